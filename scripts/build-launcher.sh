#!/usr/bin/env bash
# Puts the static Linux binary where the Node launcher expects it: actions/ims-action/bin/exec
# (ext.config.yaml's `include` ships everything in actions/ims-action/bin/ in every action zip),
# and seals the configuration next to it: actions/ims-action/bin/ims-action.seal.json.
#
#   scripts/build-launcher.sh            # make build (static musl), then copy dist/ims-action
#                                        # (this is `make launcher`)
#   scripts/build-launcher.sh BINARY     # copy an already built binary
#   IMS_ACTION_SKIP_BUILD=1 scripts/build-launcher.sh   # keep the bin/exec already there
#
# Run by the pre-app-build hook of ext.config.yaml, so `aio app build` and `aio app deploy`
# always ship a fresh binary, and by its pre-app-dev hook, so `aio app dev` has one too. The hook
# may run from a staging folder (scripts/deploy-aio.sh), so the repository root is found from this
# script's real path.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"

# LOG_LEVEL in .env (or in the environment, where aio puts .env before it runs a hook) sets the
# level of aio's own loggers, and at debug `aio app dev` prints every input of every call in
# clear. The action's level is IMS_ACTION_LOG_LEVEL. Only a warning here: this is a build step,
# and `aio app dev` goes on whatever its hook answers; scripts/deploy-aio.sh refuses such a .env.
env_log_level=
if [ -f .env ]; then
    env_log_level=$(sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?LOG_LEVEL[[:space:]]*=[[:space:]]*["'\'']?([A-Za-z]+).*/\2/p' .env | tail -n 1)
fi
if [ -n "$env_log_level" ] || [ -n "${LOG_LEVEL:-}" ]; then
    cat >&2 <<'WARNING'
build-launcher: ************************************************************************
build-launcher: WARNING: LOG_LEVEL is set (in .env or in the environment). It does not set the
build-launcher: action's level (IMS_ACTION_LOG_LEVEL in .env does); it sets aio's own loggers,
build-launcher: and at debug `aio app dev` prints every input of every call IN CLEAR: client
build-launcher: secrets, private key, the caller's Authorization header. Rename it to
build-launcher: IMS_ACTION_LOG_LEVEL in .env, and unset it in your shell.
build-launcher: ************************************************************************
WARNING
fi

# The web view (web-src/) imports @adobe/exc-app, which `aio app build` bundles from node_modules:
# install it from package-lock.json when it is missing, so that `aio app build`, `aio app deploy`
# and `aio app dev` work on a fresh clone without a step to remember.
if [ -f package-lock.json ] && [ -d web-src ] && [ ! -d node_modules/@adobe/exc-app ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "build-launcher: installing the web view's dependency (npm ci)" >&2
        npm ci --no-audit --no-fund >&2
    else
        echo "build-launcher: warning: no npm; aio app build needs node_modules/@adobe/exc-app (npm ci)" >&2
    fi
fi

# seal: writes actions/ims-action/bin/ims-action.seal.json from app.config.yaml and .env (the
# inputs aio will bind, resolved the way aio resolves them) with the binary in bin/exec; the
# launcher points the binary at it through IMS_ACTION_SEAL. A stale seal is removed first, so
# that a failure never ships one that does not match the inputs.
seal() {
    local exec=actions/ims-action/bin/exec out=actions/ims-action/bin/ims-action.seal.json
    local env_args=()
    if [ -f .env ]; then env_args=(--env .env); fi
    rm -f "$out"
    "$exec" seal --config app.config.yaml ${env_args[@]+"${env_args[@]}"} --out "$out"
    echo "build-launcher: $out" >&2
}

if [ $# -eq 0 ] && [ -n "${IMS_ACTION_SKIP_BUILD:-}" ]; then
    # scripts/deploy-aio.sh with IMS_ACTION_PREBUILT: bin/exec is already in place.
    if [ ! -x actions/ims-action/bin/exec ]; then
        echo "build-launcher: IMS_ACTION_SKIP_BUILD is set but actions/ims-action/bin/exec is missing" >&2
        exit 1
    fi
    echo "build-launcher: IMS_ACTION_SKIP_BUILD is set; keeping actions/ims-action/bin/exec" >&2
    seal
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
seal
