#!/usr/bin/env bash
# Puts the static Linux binary where the Node launcher expects it: actions/ims-action/bin/exec
# (ext.config.yaml's `include` ships it in every action zip as bin/exec).
#
#   scripts/build-launcher.sh            # make build (static musl), then copy dist/ims-action
#   scripts/build-launcher.sh BINARY     # copy an already built binary
#   IMS_ACTION_SKIP_BUILD=1 scripts/build-launcher.sh   # keep the bin/exec already there
#
# Run by the pre-app-build hook of ext.config.yaml, so `aio app build` and `aio app deploy`
# always ship a fresh binary. The hook may run from a staging folder (scripts/deploy-aio.sh), so
# the repository root is found from this script's real path.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"

if [ $# -eq 0 ] && [ -n "${IMS_ACTION_SKIP_BUILD:-}" ]; then
    # scripts/deploy-aio.sh with IMS_ACTION_PREBUILT: bin/exec is already in place.
    if [ ! -x actions/ims-action/bin/exec ]; then
        echo "build-launcher: IMS_ACTION_SKIP_BUILD is set but actions/ims-action/bin/exec is missing" >&2
        exit 1
    fi
    echo "build-launcher: IMS_ACTION_SKIP_BUILD is set; keeping actions/ims-action/bin/exec" >&2
    exit 0
fi
if [ $# -ge 1 ]; then
    bin=$1
else
    make build
    bin=dist/ims-action
fi
if [ ! -f "$bin" ]; then
    echo "build-launcher: $bin does not exist" >&2
    exit 1
fi

# Adobe I/O Runtime runs x86_64 Linux: refuse anything else (for example a macOS build) here
# rather than with a confusing "exec format error" in the activation log.
magic=$(od -An -tx1 -N4 "$bin" | tr -d ' \n')
machine=$(od -An -tx1 -j18 -N2 "$bin" | tr -d ' \n')
if [ "$magic" != "7f454c46" ] || [ "$machine" != "3e00" ]; then
    echo "build-launcher: $bin is not an x86_64 Linux (ELF) binary; build it on Linux (make build)" >&2
    exit 1
fi
if command -v file >/dev/null 2>&1 && ! file -L "$bin" | grep -Eq 'statically linked|static-pie linked'; then
    echo "build-launcher: warning: $bin is not statically linked; it may not start on Adobe's image" >&2
fi

mkdir -p actions/ims-action/bin
install -m 0755 "$bin" actions/ims-action/bin/exec
echo "build-launcher: actions/ims-action/bin/exec ($(wc -c < actions/ims-action/bin/exec | tr -d ' ') bytes)" >&2
