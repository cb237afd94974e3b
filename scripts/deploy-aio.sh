#!/usr/bin/env bash
# Deploys ims-action to Adobe I/O Runtime with `aio app deploy` (App Builder): three Node.js web
# actions (ims-action/aem-quota, ims-action/analytics-report, ims-action/aem-get) that each run
# the static Rust binary through the launcher in actions/ims-action/.
#
#   scripts/deploy-aio.sh [aio app deploy flags...]
#
# Once per machine and workspace (see docs/deploying.md):
#   npm install -g @adobe/aio-cli@11.0.2   # not 11.1.2: its `aio app deploy` fails for every app
#   aio login
#   aio app use <workspace>.json     # Developer Console > project > workspace > Download all;
#                                    # writes .aio and the AIO_RUNTIME_* lines of .env here
# then fill in .env from .env.example.
#
# `aio` builds first: the pre-app-build hook (scripts/build-launcher.sh) runs `make build` and
# copies the static binary to actions/ims-action/bin/exec. That needs Linux x86_64 (or a musl
# cross toolchain); elsewhere build on Linux first and set IMS_ACTION_PREBUILT=path/to/binary.
#
# Every deploy sends every action. aio records the actions in dist/last-deployed-actions.json
# *before* it sends them and skips, next time, every action whose record matches, so after a
# failed deploy the next one would skip them all while printing "Successful deployment" (see
# adobe/aio-lib-runtime, src/deploy-actions.js, deployWsk: the file is written before
# utils.syncProject sends anything). This script removes that record before deploying and again
# after a failure. (Not --force-deploy: in adobe/aio-cli-plugin-app, src/commands/app/deploy.js,
# that flag also deploys over an app published in a Production workspace, which aio otherwise
# refuses; it only reaches aio-lib-runtime as useForce, which skips reading the same record.)
#
# `aio` needs a package.json next to app.config.yaml. Unless the repository has one, the deploy
# runs in dist/aio-app/, a staging folder holding a generated package.json and links to
# app.config.yaml, ext.config.yaml, actions/, scripts/, .env and .aio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# aio-cli releases whose `aio app deploy` is broken for every app, and the one to install instead.
BROKEN_AIO_VERSIONS=(11.1.2)
GOOD_AIO_VERSION=11.0.2
# What 11.1.2 prints (a clash between its oclif core and the events plugin's, upstream).
BROKEN_AIO_ERROR='orig.startsWith is not a function'

broken_aio_help() {
    cat >&2 <<EOF
deploy-aio: aio-cli $1 cannot deploy any app ('$BROKEN_AIO_ERROR', a plugin version clash
deploy-aio: in that release). Install the last release that works, then run this again:
    npm install -g @adobe/aio-cli@$GOOD_AIO_VERSION
EOF
}

if ! command -v aio >/dev/null 2>&1; then
    cat >&2 <<EOF
deploy-aio: the Adobe I/O CLI (aio) is not installed. Install it with Node.js 18 or later:
    npm install -g @adobe/aio-cli@$GOOD_AIO_VERSION
    aio login
    aio app use <workspace>.json   # from Developer Console > your project > workspace > Download all
EOF
    exit 1
fi
aio_version=$(aio --version 2>/dev/null | sed -n 's|.*@adobe/aio-cli/\([0-9][0-9.]*\).*|\1|p' | head -n 1)
for v in "${BROKEN_AIO_VERSIONS[@]}"; do
    if [ "$aio_version" = "$v" ]; then
        broken_aio_help "$v"
        exit 1
    fi
done
if [ -z "$aio_version" ]; then
    echo "deploy-aio: warning: could not read the aio-cli version from 'aio --version'" >&2
fi

if [ ! -f .env ]; then
    echo "deploy-aio: no .env here: run 'aio app use <workspace>.json', then add the inputs from .env.example" >&2
    exit 1
fi
if ! grep -q '^AIO_RUNTIME_NAMESPACE=.' .env && [ ! -f .aio ]; then
    echo "deploy-aio: warning: .env has no AIO_RUNTIME_NAMESPACE and there is no .aio: did you run 'aio app use'?" >&2
fi
# aio loads .env into its own environment, where LOG_LEVEL sets aio's loggers (at debug,
# `aio app dev` prints every input in clear), and LOG_LEVEL no longer sets the action's level
# (IMS_ACTION_LOG_LEVEL does). Refused rather than warned: a deploy would silently drop the level
# the user meant for the action, and the same .env makes `aio app dev` print secrets.
if grep -Eq '^[[:space:]]*(export[[:space:]]+)?LOG_LEVEL[[:space:]]*=[[:space:]]*["'\'']?[A-Za-z]' .env; then
    cat >&2 <<'EOF'
deploy-aio: .env sets LOG_LEVEL. That variable is aio's own log level, not the action's: at debug,
deploy-aio: `aio app dev` prints every input of every call in clear (client secrets, private key,
deploy-aio: the caller's Authorization header). Rename it to IMS_ACTION_LOG_LEVEL (the action's
deploy-aio: LOG_LEVEL input; see .env.example), then run this again.
EOF
    exit 1
fi
if [ -n "${LOG_LEVEL:-}" ]; then
    echo "deploy-aio: note: ignoring LOG_LEVEL from your shell for this deploy (it is aio's own log level)" >&2
    unset LOG_LEVEL
fi

if [ -n "${IMS_ACTION_PREBUILT:-}" ]; then
    bash scripts/build-launcher.sh "$IMS_ACTION_PREBUILT"
    # The pre-app-build hook would rebuild (and fail off Linux): tell it to keep this binary.
    export IMS_ACTION_SKIP_BUILD=1
fi

app=$root
if [ ! -f package.json ]; then
    app=$root/dist/aio-app
    mkdir -p "$app"
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
    printf '{\n  "name": "ims-action",\n  "version": "%s",\n  "private": true\n}\n' "${version:-0.1.0}" \
        > "$app/package.json"
    for f in app.config.yaml ext.config.yaml actions scripts .env .aio; do
        if [ -e "$f" ]; then ln -sfn "$root/$f" "$app/$f"; fi
    done
    echo "deploy-aio: staging in ${app#"$root"/} (no package.json at the repository root)"
fi

cd "$app"
last_deployed=$app/dist/last-deployed-actions.json
rm -f "$last_deployed"
# aio's output is shown as it comes and kept (mode 600, removed on exit) to recognise failures.
output=$(umask 077 && mktemp)
trap 'rm -f "$output"' EXIT
status=0
aio app deploy "$@" 2>&1 | tee "$output" || status=$?
if [ "$status" -ne 0 ]; then
    # A failed deploy may already have recorded actions it never sent: forget them.
    rm -f "$last_deployed"
    if grep -q "$BROKEN_AIO_ERROR" "$output"; then
        broken_aio_help "${aio_version:-this version}"
    fi
    echo "deploy-aio: aio app deploy failed (exit $status); the next run sends every action again" >&2
    exit "$status"
fi

cat <<'EOF'

The actions are web actions behind Adobe's validator (require-adobe-auth). Call one with an IMS
access token of your org:
  curl -sS "https://<namespace>.adobeioruntime.net/api/v1/web/ims-action/aem-quota" \
    -H "Authorization: Bearer $TOKEN" -H "x-gw-ims-org-id: <org>@AdobeOrg"
(`aio app get-url` prints the exact URLs.)  Logs: aio rt activation logs --last
EOF
