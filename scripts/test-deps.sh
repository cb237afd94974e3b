#!/usr/bin/env bash
# What the tests run for real, installed from Debian's packages when missing (make test runs this
# first, and so does CI):
#   redis-server, redis-cli   the shared token store tests start their own servers
#   go                        the conformance tests build the real OpenWhisk ActionLoop proxy
#   python3 with venv         the dockerskeleton proxy (flask, gevent from PyPI) and the bench tests
#   chromium                  the browser tests of the web view (never a downloaded browser)
#   node, npm                 the launcher, deploy-script, validator and browser tests
# Without root (or sudo) it names what is missing and fails: a test that cannot run must not pass.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo"
    else
        echo "test-deps: missing ${missing[*]}: install them (apt-get install ${missing[*]}) and run make test again" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: missing ${missing[*]}, and no apt-get here to install them: install them and run make test again" >&2
    exit 1
fi
echo "test-deps: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
$sudo apt-get install -y -q "${missing[@]}" >/dev/null
