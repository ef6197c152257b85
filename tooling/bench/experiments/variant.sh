#!/bin/sh
# Build a scratch copy of packages/core with experiment patches applied, for `pnpm bench --variant`.
#   tooling/bench/experiments/variant.sh <name> [patch ...]     (patches from this folder, applied in order)
#   CORE_REV=<git rev> tooling/bench/experiments/variant.sh <name>   (core's src as it was at that commit, e.g. to
#                                                                     compare a redesign with the core before it)
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
if [ -n "${CORE_REV:-}" ]; then
  git -C "$repo" archive "$CORE_REV" packages/core/src | tar -x -C "$dir" --strip-components=2
else
  cp -r "$repo/packages/core/src" "$dir/src"
fi
find "$dir/src" -name '*.test.ts' -delete
# core's dependencies; a core from before 1 Dec 2026 (CORE_REV) also imports undici, which core no longer depends on.
mkdir "$dir/node_modules"
for e in "$repo"/packages/core/node_modules/* "$repo"/packages/core/node_modules/.bin; do ln -s "$e" "$dir/node_modules/"; done
if grep -rqs "from 'undici'" "$dir/src"; then
  undici=$(ls -d "$repo"/node_modules/.pnpm/undici@7*/node_modules/undici | head -n 1)
  ln -s "$undici" "$dir/node_modules/undici"
fi
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
