#!/usr/bin/env bash
# Deploys ims-action to Apache OpenWhisk with the wsk CLI, as web actions in package ims-action.
#
#   make package && scripts/deploy-wsk.sh [VARIANT...]
#
# VARIANT (default: actionloop native):
#   actionloop  aem-quota, analytics-report, aem-get       dist/ims-action.zip on an ActionLoop image
#               (IMS_ACTION_IMAGE, default openwhisk/actionloop-base:nightly): one warm process per
#               container, token cached in memory
#   native      <op>-native                                  dist/ims-action.zip with --native
#               (blackbox, openwhisk/dockerskeleton): one process per activation
#   launcher    <op>-node                                    dist/ims-action-launcher.zip, kind
#               nodejs:20 (IMS_ACTION_NODE_KIND): the Node launcher, as on Adobe I/O Runtime
#
# Parameters: each action gets exactly the inputs manifest.yaml binds to it (package inputs and its
# own), `$VAR`s resolved from the environment and then .env (ENV_FILE) by the binary itself
# (`dist/ims-action inputs`), the same resolution that seals the zips (`scripts/package.sh`,
# re-run here with the same ENV_FILE): a caller can then neither add nor change one. The action's
# LOG_LEVEL comes from IMS_ACTION_LOG_LEVEL (the .env is shared with aio, whose own loggers read
# LOG_LEVEL; see .env.example). `--web true` also marks the actions `final`. Set
# IMS_ACTION_WEB_SECURE to a secret to require it in the X-Require-Whisk-Auth header
# (--web-secure); without it the URLs are open to anyone.
# The wsk CLI reads APIHOST and AUTH from ~/.wskprops (wsk property set); WSK_FLAGS adds flags
# such as -i for a self-signed local deployment.
set -euo pipefail
cd "$(dirname "$0")/.."

WSK=${WSK:-wsk}
PACKAGE=${IMS_ACTION_PACKAGE:-ims-action}
IMAGE=${IMS_ACTION_IMAGE:-openwhisk/actionloop-base:nightly}
NODE_KIND=${IMS_ACTION_NODE_KIND:-nodejs:20}
ENV_FILE=${ENV_FILE:-.env}
read -r -a wsk_flags <<< "${WSK_FLAGS:-}"
OPERATIONS=(aem-quota analytics-report aem-get)
BIN=dist/ims-action

if [ $# -gt 0 ]; then variants=("$@"); else variants=(actionloop native); fi
for v in "${variants[@]}"; do
    case $v in
        actionloop|native|launcher) ;;
        *) echo "deploy-wsk: unknown variant '$v' (actionloop, native, launcher)" >&2; exit 2 ;;
    esac
done

if ! command -v "$WSK" >/dev/null 2>&1; then
    cat >&2 <<EOF
deploy-wsk: the OpenWhisk CLI '$WSK' is not installed.
  Get it from the apache/openwhisk-cli releases on GitHub (a single binary named wsk), then point
  it at your OpenWhisk:
      wsk property set --apihost <host> --auth <uuid:key>
  (a local standalone OpenWhisk prints both when it starts; use WSK_FLAGS=-i for its self-signed
  certificate). Set WSK=/path/to/wsk if it is not on PATH.
EOF
    exit 1
fi
if [ ! -x "$BIN" ]; then
    echo "deploy-wsk: $BIN is missing; run make package first" >&2
    exit 1
fi
if [ -f "$ENV_FILE" ] && grep -Eq '^[[:space:]]*(export[[:space:]]+)?LOG_LEVEL[[:space:]]*=[[:space:]]*[^[:space:]#]' "$ENV_FILE"; then
    echo "deploy-wsk: warning: LOG_LEVEL in $ENV_FILE is ignored: the action's level is" \
        "IMS_ACTION_LOG_LEVEL (aio's own loggers read LOG_LEVEL; see .env.example)" >&2
fi
[ -f "$ENV_FILE" ] || echo "deploy-wsk: no $ENV_FILE: deploying without credentials (cp .env.example .env to add them)" >&2
# The zips must be sealed with what is deployed now: package them again from this ENV_FILE.
ENV_FILE=$ENV_FILE bash scripts/package.sh "$BIN" >/dev/null

params=$(umask 077 && mktemp -d)
trap 'rm -rf "$params"' EXIT
env_args=()
if [ -f "$ENV_FILE" ]; then env_args=(--env "$ENV_FILE"); fi

# (the ${a[@]+...} form keeps bash 3.2, macOS's, happy with an empty array under set -u)
run_wsk() { "$WSK" ${wsk_flags[@]+"${wsk_flags[@]}"} "$@"; }

run_wsk package update "$PACKAGE" >/dev/null

web_flags=(--web true)
if [ -n "${IMS_ACTION_WEB_SECURE:-}" ]; then web_flags+=(--web-secure "$IMS_ACTION_WEB_SECURE"); fi

deployed=()
for v in "${variants[@]}"; do
    for op in "${OPERATIONS[@]}"; do
        case $v in
            actionloop)
                name=$op
                code=(dist/ims-action.zip --docker "$IMAGE")
                limits=(--concurrency 1 --timeout 60000 --memory 128) ;;
            native)
                name=$op-native
                code=(dist/ims-action.zip --native)
                limits=(--concurrency 1 --timeout 60000 --memory 128) ;;
            launcher)
                name=$op-node
                code=(dist/ims-action-launcher.zip --kind "$NODE_KIND")
                # Concurrency above 1 needs an OpenWhisk configured to allow it
                # (docs/concurrency.md); the launcher runs activations at once over one binary,
                # so raising it to what the deployment allows is safe.
                limits=(--concurrency 1 --timeout 60000 --memory 256) ;;
        esac
        # What manifest.yaml binds to this action (secrets included: a 0600 file, removed on exit).
        "$BIN" inputs --config manifest.yaml --action "$name" ${env_args[@]+"${env_args[@]}"} \
            > "$params/$name.json"
        run_wsk action update "$PACKAGE/$name" "${code[@]}" --param-file "$params/$name.json" \
            "${web_flags[@]}" "${limits[@]}" >/dev/null
        deployed+=("$PACKAGE/$name")
        echo "deploy-wsk: $PACKAGE/$name ($v; parameters from manifest.yaml and $ENV_FILE, values not shown)"
    done
done

echo
echo "Web URLs (https://<APIHOST>/api/v1/web/<namespace>/$PACKAGE/<action>):"
for a in "${deployed[@]}"; do
    run_wsk action get "$a" --url | tail -n 1
done
secure=
# shellcheck disable=SC2016 # print the variable's name, never the secret itself
if [ -n "${IMS_ACTION_WEB_SECURE:-}" ]; then secure=' -H "X-Require-Whisk-Auth: $IMS_ACTION_WEB_SECURE"'; fi
cat <<EOF

Call one (GET or POST; the configuration is sealed, so a query or body that sets any input is
refused with 400, unless manifest.yaml's CALLER_INPUTS lets callers choose it):
  curl -sS$secure "\$(wsk action get $PACKAGE/aem-quota --url | tail -n 1)"
  curl -sS$secure -X POST -H 'content-type: application/json' -d '{}' "<url>"
Or without HTTP:
  wsk action invoke $PACKAGE/aem-quota --result
  wsk activation logs --last
EOF
