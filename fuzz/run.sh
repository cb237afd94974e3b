#!/usr/bin/env bash
# Runs the cargo-fuzz targets, one after the other.
#
#   fuzz/run.sh                 # every target, 600 s each
#   fuzz/run.sh fuzz_main 60    # one target, 60 s
#
# Environment: FUZZ_SANITIZER (address, the default, or none), FUZZ_NIGHTLY=1 (use `cargo +nightly`
# when rustup has it), FUZZ_ARGS (more libFuzzer flags, e.g. -jobs=2). Findings land in fuzz/artifacts/<target>/; the corpus grows in
# fuzz/corpus/<target>/ (only the committed seed-* files are tracked).
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, -Cpasses=sancov-module). On the stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them (the default here); FUZZ_NIGHTLY=1 uses nightly instead.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("${1:-all}")
seconds="${2:-600}"
sanitizer="${FUZZ_SANITIZER:-address}"
if [ "${targets[0]}" = all ]; then
    targets=(fuzz_main fuzz_actionloop fuzz_resp fuzz_dotenv)
fi

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

if [ "${FUZZ_NIGHTLY:-0}" = 1 ] && cargo +nightly -V >/dev/null 2>&1; then
    cargo=(cargo +nightly)
else
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi

# Seeds with a real RSA key take fuzz_main past key parsing into JWT signing. The key is made
# here, per machine, and never committed (corpus files other than seed-* are git-ignored).
seed_keys() {
    local dir=fuzz/corpus/fuzz_main tmp
    [ -e "$dir/gen-jwt-pem.json" ] && return 0
    command -v openssl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 || return 0
    tmp=$(mktemp -d)
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/key.pem" 2>/dev/null
    openssl rsa -in "$tmp/key.pem" -traditional -out "$tmp/key1.pem" 2>/dev/null
    openssl req -x509 -key "$tmp/key.pem" -subj /CN=fuzz -days 365 -out "$tmp/cert.pem" 2>/dev/null
    python3 - "$tmp" "$dir" <<'PY'
import base64, json, sys
tmp, out = sys.argv[1:3]
pkcs8, pkcs1, cert = (open(f"{tmp}/{n}").read() for n in ("key.pem", "key1.pem", "cert.pem"))
jwt = {"JWT_CLIENT_ID": "id", "JWT_CLIENT_SECRET": "p8e-s", "JWT_TECHNICAL_ACCOUNT_ID": "T@techacct.adobe.com",
       "JWT_IMS_ORG": "O@AdobeOrg", "JWT_METASCOPES": "ent_dataservices_sdk", "JWT_PRIVATE_KEY": pkcs8}
aem = {"ok": True, "integration": {"imsEndpoint": "ims-na1.adobelogin.com", "metascopes": "ent_aem_cloud_api",
       "technicalAccount": {"clientId": "cm-p1-e2-integration", "clientSecret": "p8e-s"}, "id": "T@techacct.adobe.com",
       "org": "O@AdobeOrg", "privateKey": pkcs1.replace("\n", "\r\n"), "publicKey": cert.replace("\n", "\r\n")}}
seeds = {
    "gen-jwt-pem.json": jwt,
    "gen-jwt-b64.json": dict(jwt, JWT_PRIVATE_KEY=base64.b64encode(pkcs8.encode()).decode(), OPERATION="analytics-report",
                             ANALYTICS_COMPANY_ID="c", ANALYTICS_RSID="r"),
    "gen-aem.json": {"AEM_SERVICE_CREDENTIALS": aem, "OPERATION": "aem-get",
                     "AEM_AUTHOR_URL": "https://author-p1-e2.adobeaemcloud.com"},
    "gen-aem-b64.json": {"AEM_SERVICE_CREDENTIALS": base64.b64encode(json.dumps(aem).encode()).decode()},
}
for name, params in seeds.items():
    with open(f"{out}/{name}", "w") as f:
        json.dump(params, f)
PY
    rm -rf "$tmp"
}

for target in "${targets[@]}"; do
    [ "$target" = fuzz_main ] && seed_keys
    dict=()
    [ "$target" = fuzz_main ] && dict=(-dict="$PWD/fuzz/params.dict")
    echo "== $target: ${seconds} s, sanitizer ${sanitizer}"
    # shellcheck disable=SC2086
    "${cargo[@]}" fuzz run --sanitizer "$sanitizer" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${dict[@]}" ${FUZZ_ARGS:-}
done
