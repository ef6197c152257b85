#!/bin/sh
# Run core's own tests against a variant built by variant.sh: experiments/test-variant.sh <name> [vitest args]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 <name> [vitest args]" >&2; exit 2; }
dir=${BENCH_VARIANTS:-${TMPDIR:-/tmp}}/core-variant-$1
shift
[ -d "$dir/src" ] || { echo "no variant at $dir: run variant.sh first" >&2; exit 2; }
rm -rf "$dir/test"
cp -r "$repo/packages/core/test" "$dir/test"
for t in "$repo"/packages/core/src/*.test.ts; do cp "$t" "$dir/src/"; done
cat > "$dir/vitest.config.mjs" <<'JS'
const conditions = ['@connector/source', 'node', 'development|production'];
export default {
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 30000, hookTimeout: 30000 },
};
JS
cd "$dir" && "$repo/node_modules/.bin/vitest" run --config vitest.config.mjs "$@"
