#!/usr/bin/env bash
# The browser tests of the web view (tools/ui/test/): headless Chromium (Debian's chromium, never a
# downloaded one) driven by playwright-core, through the `make ui` server, against the emulator.
#   tools/ui/test.sh                      (make ui-test; part of make test)
#   UI_SCREENSHOTS=docs tools/ui/test.sh  (make ui-screenshots: the PNGs docs/ui.md shows)
# Installs playwright-core (pinned in tools/ui/package-lock.json) with npm ci when needed.
set -euo pipefail
cd "$(dirname "$0")/../.."

chromium=${CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "ui-test: node and npm are needed for the browser tests (scripts/test-deps.sh installs them)" >&2
    exit 1
fi
if [ ! -x "$chromium" ]; then
    echo "ui-test: $chromium is missing (apt-get install chromium; scripts/test-deps.sh does)" >&2
    exit 1
fi
dir=tools/ui
stamp=$dir/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
cargo build --quiet -p ims-action -p adobe-emulator
CHROMIUM=$chromium IMS_ACTION_BIN=target/debug/ims-action ADOBE_EMULATOR_BIN=target/debug/adobe-emulator \
    node --test "$dir/test/"
