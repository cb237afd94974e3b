#!/usr/bin/env bash
# Deploys ims-action to Adobe I/O Runtime with `aio app deploy` (App Builder): three Node.js web
# actions (ims-action/aem-quota, ims-action/analytics-report, ims-action/aem-get) that each run
# the static Rust binary through the launcher in actions/ims-action/.
#
#   scripts/deploy-aio.sh [aio app deploy flags...]      e.g. --force-deploy
#
# Once per machine and workspace (see the README's deploy guide):
#   npm install -g @adobe/aio-cli
#   aio login
#   aio app use <workspace>.json     # Developer Console > project > workspace > Download all;
#                                    # writes .aio and the AIO_RUNTIME_* lines of .env here
# then fill in .env from .env.example.
#
# `aio` builds first: the pre-app-build hook (scripts/build-launcher.sh) runs `make build` and
# copies the static binary to actions/ims-action/bin/exec. That needs Linux x86_64 (or a musl
# cross toolchain); elsewhere build on Linux first and set IMS_ACTION_PREBUILT=path/to/binary.
#
# `aio` needs a package.json next to app.config.yaml. This repository is a Rust project without
# one, so unless it has one the deploy runs in dist/aio-app/, a staging folder holding a generated
# package.json and links to app.config.yaml, ext.config.yaml, actions/, scripts/, .env and .aio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v aio >/dev/null 2>&1; then
    cat >&2 <<'EOF'
deploy-aio: the Adobe I/O CLI (aio) is not installed. Install it with Node.js 18 or later:
    npm install -g @adobe/aio-cli
    aio login
    aio app use <workspace>.json   # from Developer Console > your project > workspace > Download all
EOF
    exit 1
fi
if [ ! -f .env ]; then
    echo "deploy-aio: no .env here: run 'aio app use <workspace>.json', then add the inputs from .env.example" >&2
    exit 1
fi
if ! grep -q '^AIO_RUNTIME_NAMESPACE=.' .env && [ ! -f .aio ]; then
    echo "deploy-aio: warning: .env has no AIO_RUNTIME_NAMESPACE and there is no .aio: did you run 'aio app use'?" >&2
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
aio app deploy "$@"

cat <<'EOF'

The actions are web actions behind Adobe's validator (require-adobe-auth). Call one with an IMS
access token of your org:
  curl -sS "https://<namespace>.adobeioruntime.net/api/v1/web/ims-action/aem-quota" \
    -H "Authorization: Bearer $TOKEN" -H "x-gw-ims-org-id: <org>@AdobeOrg"
(`aio app get-url` prints the exact URLs.)  Logs: aio rt activation logs --last
EOF
