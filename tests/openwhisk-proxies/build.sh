#!/usr/bin/env bash
# Builds the real OpenWhisk proxies for the conformance tests (tests/conformance.rs):
#
#   OUT/actionloop     the Go ActionLoop proxy (apache/openwhisk-runtime-go), from actionloop-go/
#   OUT/venv/          a Python venv with flask and gevent for the dockerskeleton proxy
#
#   tests/openwhisk-proxies/build.sh [OUT]      # OUT defaults to target/openwhisk-proxies
#
# Repeated runs are no-ops: each output carries a stamp of what it was built from. The Go build
# uses only the standard library and runs with GOPROXY=off, so it never downloads a module. When
# `go` is missing and we are root, Debian's golang-go is installed with apt; otherwise the script
# stops and says what to install.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/target/openwhisk-proxies}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The versions of the openwhisk/dockerskeleton image (core/actionProxy/Dockerfile upstream).
PY_PACKAGES=(flask==3.0.0 gevent==23.9.1 greenlet==3.0.0)

say() { echo "openwhisk-proxies: $*" >&2; }
die() { say "$*"; exit 1; }

# Two test runs at once build one after the other.
exec 9>"$OUT/.lock"
flock 9

apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    say "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

# --- the Go ActionLoop proxy ------------------------------------------------------------------
go_stamp=$(cd "$HERE/actionloop-go" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
if [ ! -x "$OUT/actionloop" ] || [ "$(cat "$OUT/actionloop.stamp" 2>/dev/null)" != "$go_stamp" ]; then
    if ! command -v go >/dev/null 2>&1; then
        apt_install golang-go ||
            die "the Go toolchain is missing: install it (Debian: apt-get install golang-go) or run as root"
    fi
    say "building the Go ActionLoop proxy with $(go version)"
    rm -f "$OUT/actionloop" "$OUT/actionloop.stamp"
    (
        cd "$HERE/actionloop-go"
        # Offline and self-contained: no module downloads, no toolchain switch, caches under OUT.
        env GOPROXY=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 \
            GOPATH="$OUT/gopath" GOCACHE="$OUT/gocache" \
            go build -trimpath -buildvcs=false -o "$OUT/actionloop" ./main
    ) || die "the Go ActionLoop proxy did not build (see above)"
    echo "$go_stamp" >"$OUT/actionloop.stamp"
fi

# --- the dockerskeleton proxy's Python ----------------------------------------------------------
py_stamp="${PY_PACKAGES[*]}"
if [ ! -x "$OUT/venv/bin/python" ] || [ "$(cat "$OUT/venv.stamp" 2>/dev/null)" != "$py_stamp" ]; then
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv ||
        die "python3 is missing: install it (Debian: apt-get install python3 python3-venv)"
    rm -rf "$OUT/venv" "$OUT/venv.stamp"
    if ! python3 -m venv "$OUT/venv" >/dev/null 2>&1; then
        rm -rf "$OUT/venv"
        apt_install python3-venv ||
            die "python3 cannot make a venv: install python3-venv (Debian: apt-get install python3-venv)"
        python3 -m venv "$OUT/venv" || die "python3 -m venv failed"
    fi
    say "installing ${PY_PACKAGES[*]} from PyPI"
    "$OUT/venv/bin/python" -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}" ||
        die "pip could not install ${PY_PACKAGES[*]} (PyPI unreachable?)"
    echo "$py_stamp" >"$OUT/venv.stamp"
fi

"$OUT/actionloop" -version >&2
