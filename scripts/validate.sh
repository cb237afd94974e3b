#!/usr/bin/env bash
# Checks the deployment descriptors: app.config.yaml + ext.config.yaml with Adobe's own loader and
# schema (@adobe/aio-cli-lib-app-config, pinned in tools/validate/package-lock.json), manifest.yaml,
# and .env.example; then the validator's own tests (it must reject broken configs).
# Needs Node.js 18+ and the npm registry (npm ci, the first time or when the lock file changes).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "validate: node and npm are needed (Node.js 18 or later)" >&2
    exit 1
fi
dir=tools/validate
stamp=$dir/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
node "$dir/validate.js"
node --test "$dir/test/"
