#!/usr/bin/env bash
# make demo: builds the action and the emulator, starts adobe-emulator with a fresh demo
# credential set, runs the action once per credential kind through `ims-action invoke`, then
# Target's Admin API through API routes, prints each result, and stops the emulator. Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building ims-action and adobe-emulator" >&2
cargo build --quiet --workspace --bin ims-action --bin adobe-emulator
bin=target/debug/ims-action
emu=target/debug/adobe-emulator

work=$(mktemp -d)
env_file="$work/.env.demo"
emu_pid=
cleanup() {
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$emu" --env-file "$env_file" >"$work/emulator.out" 2>"$work/emulator.log" &
emu_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$work/emulator.out" 2>/dev/null && break
    sleep 0.1
done
if ! grep -q "listening on" "$work/emulator.out"; then
    echo "demo: the emulator did not start:" >&2
    cat "$work/emulator.log" >&2
    exit 1
fi
echo "== $(cat "$work/emulator.out")" >&2

status=0
# run TITLE ACTION PARAMS EXPECTED_EXIT
run() {
    local title=$1 action=$2 params=$3 expected=${4:-0} code=0
    echo
    echo "== $title"
    echo "$params" >"$work/params.json"
    "$bin" invoke --params "$work/params.json" --env "$env_file" \
        --config ext.config.yaml --action "$action" 2>"$work/action.log" || code=$?
    sed 's/^/   log: /' "$work/action.log" >&2
    if [ "$code" != "$expected" ]; then
        echo "demo: expected exit $expected, got $code" >&2
        status=1
    fi
}

run "OAuth server-to-server -> AEM Data Service (contentRequestsQuota)" aem-quota '{"AUTH_METHOD":"oauth-s2s"}'
run "Service Account (JWT) -> Analytics 2.0 report (page views by day, last 7 days)" analytics-report '{"AUTH_METHOD":"jwt"}'
run "AEM service credentials -> AEM content (/content/dam.json)" aem-get '{"AUTH_METHOD":"aem-service-credentials"}'
run "Developer token -> AEM content (/content/dam.json)" aem-get '{"AUTH_METHOD":"dev-token"}'
# API routes (docs/routes.md): the emulator's Target Admin API through two routes of a table,
# as a deployment would seal it in API_ROUTES (there with https://mc.adobe.io, examples/routes/).
base=$(sed -n 's/^IMS_BASE_URL=//p' "$env_file")
routes=$(cat <<JSON
{"target-activities": {"url": "$base/{tenant}/target/activities",
  "params": {"tenant": "[a-z0-9]{1,64}"}, "query": {"limit": "[0-9]{1,4}", "offset": "[0-9]{1,6}"},
  "headers": {"accept": "application/vnd.adobe.target.v3+json"}},
 "target-create-audience": {"url": "$base/{tenant}/target/audiences", "method": "POST",
  "params": {"tenant": "[a-z0-9]{1,64}"}, "body": true,
  "headers": {"content-type": "application/vnd.adobe.target.v3+json"}}}
JSON
)
run "OAuth server-to-server -> Target Admin API through a route (GET activities, limit 2)" aem-quota \
    "{\"AUTH_METHOD\":\"oauth-s2s\",\"OPERATION\":\"api\",\"API_ROUTES\":$routes,\"API_ROUTE\":\"target-activities\",\"API_PARAMS\":{\"tenant\":\"demo\",\"limit\":2}}"
run "OAuth server-to-server -> Target Admin API through a route (POST an audience)" aem-quota \
    "{\"AUTH_METHOD\":\"oauth-s2s\",\"OPERATION\":\"api\",\"API_ROUTES\":$routes,\"API_ROUTE\":\"target-create-audience\",\"API_PARAMS\":{\"tenant\":\"demo\"},\"API_BODY\":{\"name\":\"Returning visitors\",\"definition\":{\"visitor\":\"returning\"}}}"
run "A path escape in a route value -> 400 before any token or request (exit 1 is expected)" aem-quota \
    "{\"AUTH_METHOD\":\"oauth-s2s\",\"OPERATION\":\"api\",\"API_ROUTES\":$routes,\"API_ROUTE\":\"target-activities\",\"API_PARAMS\":{\"tenant\":\"../ims\"}}" 1
run "A missing input -> one 400 that names it (exit 1 is expected)" aem-quota \
    '{"AUTH_METHOD":"oauth-s2s","OAUTHS2S_CLIENT_ID":"","IMS_ORG_ID":""}' 1
exit $status
