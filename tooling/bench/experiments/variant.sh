#!/bin/sh
# Build a scratch copy of packages/core with experiment patches applied, for `pnpm bench --variant`.
#   tooling/bench/experiments/variant.sh <name> [patch ...]     (patches from this folder, applied in order)
# Prints the path to pass as --variant <name>=<path>. Never touches packages/core.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 <name> [patch ...]" >&2; exit 2; }
name=$1
shift
dir=${BENCH_VARIANTS:-${TMPDIR:-/tmp}}/core-variant-$name
rm -rf "$dir"
mkdir -p "$dir"
cp -r "$repo/packages/core/src" "$dir/src"
find "$dir/src" -name '*.test.ts' -delete
ln -s "$repo/packages/core/node_modules" "$dir/node_modules"
printf '{ "type": "module" }\n' > "$dir/package.json"
cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "$repo/tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist", "composite": false, "incremental": false,
    "declaration": false, "declarationMap": false, "sourceMap": false,
    "typeRoots": ["$repo/node_modules/@types"] },
  "include": ["src"]
}
JSON
for p in "$@"; do
  patch -s -d "$dir" -p1 < "$here/$p"
done
"$repo/node_modules/.bin/tsc" -p "$dir/tsconfig.json"
echo "$dir/dist/index.js"
