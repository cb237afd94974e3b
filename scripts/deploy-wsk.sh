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
# Parameters: the inputs set in .env (ENV_FILE) become parameters of the package, shared by its
# actions; each action binds its OPERATION. The action's LOG_LEVEL comes from IMS_ACTION_LOG_LEVEL
# (the .env is shared with aio, whose own loggers read LOG_LEVEL; see .env.example).
# `--web true` also marks the actions `final`, so web callers cannot override them. Set
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
INPUTS=(AUTH_METHOD OAUTHS2S_CLIENT_ID OAUTHS2S_CLIENT_SECRET OAUTHS2S_CECREDENTIALS_METASCOPES IMS_ORG_ID
    JWT_CLIENT_ID JWT_CLIENT_SECRET JWT_TECHNICAL_ACCOUNT_ID JWT_IMS_ORG JWT_METASCOPES JWT_PRIVATE_KEY
    AEM_SERVICE_CREDENTIALS AEM_DEV_TOKEN ANALYTICS_COMPANY_ID ANALYTICS_RSID ANALYTICS_REPORT
    AEM_AUTHOR_URL AEM_PATH IMS_BASE_URL AEM_DATA_SERVICE_BASE_URL ANALYTICS_BASE_URL
    IMS_ACTION_LOG_LEVEL:LOG_LEVEL HTTP_TIMEOUT_MS ALLOWED_IMS_ORGS)
# (NAME:PARAM: the .env variable NAME becomes the parameter PARAM)

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
if ! command -v python3 >/dev/null 2>&1; then
    echo "deploy-wsk: python3 is needed to read $ENV_FILE safely" >&2
    exit 1
fi
needs=(dist/ims-action.zip)
for v in "${variants[@]}"; do [ "$v" = launcher ] && needs+=(dist/ims-action-launcher.zip); done
for f in "${needs[@]}"; do
    if [ ! -f "$f" ]; then
        echo "deploy-wsk: $f is missing; run make package first" >&2
        exit 1
    fi
done

# .env -> a JSON parameter file (mode 600, removed on exit). Empty values are left out.
params=$(umask 077 && mktemp)
trap 'rm -f "$params"' EXIT
if [ -f "$ENV_FILE" ]; then
    python3 - "$ENV_FILE" "${INPUTS[@]}" > "$params" <<'PY'
import json, re, sys

path, wanted = sys.argv[1], {}
for arg in sys.argv[2:]:  # NAME or NAME:PARAM
    name, _, param = arg.partition(":")
    wanted[name] = param or name
line_re = re.compile(r'^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$')
params, lines, i = {}, open(path, encoding="utf-8").read().splitlines(), 0
while i < len(lines):
    m = line_re.match(lines[i])
    i += 1
    if not m:
        continue
    key, raw = m.group(1), m.group(2)
    if raw[:1] in ("'", '"'):  # quoted, possibly over several lines (dotenv)
        quote, body = raw[0], raw[1:]
        while quote not in body and i < len(lines):
            body += "\n" + lines[i]
            i += 1
        value = body[: body.index(quote)] if quote in body else body
        if quote == '"':
            value = value.replace("\\n", "\n")
    else:
        value = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    if key == "LOG_LEVEL" and value != "":
        print("deploy-wsk: warning: LOG_LEVEL in the .env file is ignored: the action's level is "
              "IMS_ACTION_LOG_LEVEL (aio's own loggers read LOG_LEVEL; see .env.example)", file=sys.stderr)
    if key in wanted and value != "":
        params[wanted[key]] = value
json.dump(params, sys.stdout)
PY
else
    echo "deploy-wsk: no $ENV_FILE: deploying without credentials (cp .env.example .env to add them)" >&2
    echo '{}' > "$params"
fi
echo "deploy-wsk: package $PACKAGE with $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$params") parameters from $ENV_FILE (values not shown)"

# (the ${a[@]+...} form keeps bash 3.2, macOS's, happy with an empty array under set -u)
run_wsk() { "$WSK" ${wsk_flags[@]+"${wsk_flags[@]}"} "$@"; }

run_wsk package update "$PACKAGE" --param-file "$params" >/dev/null

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
                # Concurrency above 1 needs an OpenWhisk configured to allow it; the launcher
                # queues, so raising it is safe.
                limits=(--concurrency 1 --timeout 60000 --memory 256) ;;
        esac
        run_wsk action update "$PACKAGE/$name" "${code[@]}" -p OPERATION "$op" \
            "${web_flags[@]}" "${limits[@]}" >/dev/null
        deployed+=("$PACKAGE/$name")
        echo "deploy-wsk: $PACKAGE/$name ($v)"
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

Call one (GET or POST; a JSON body or the query string may add parameters that are not bound;
overriding a bound one is refused with 400, as the actions are final):
  curl -sS$secure "\$(wsk action get $PACKAGE/aem-quota --url | tail -n 1)"
  curl -sS$secure -X POST -H 'content-type: application/json' -d '{}' "<url>"
Or without HTTP:
  wsk action invoke $PACKAGE/aem-quota --result
  wsk activation logs --last
EOF
