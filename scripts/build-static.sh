#!/usr/bin/env bash
# Builds the static release binary of ims-action and copies it to dist/ims-action.
#
# Preferred: x86_64-unknown-linux-musl (fully static; runs on Alpine-based dockerskeleton and on
# any glibc image). ring (via rustls) compiles C, so the musl build needs a C compiler for musl:
# musl-gcc from Debian's musl-tools when present, else plain gcc (which works for ring).
# Fallback when the musl target cannot be had: glibc with +crt-static. That binary is static too,
# but its DNS lookups still load the host's NSS libraries, so prefer musl.
set -euo pipefail
cd "$(dirname "$0")/.."

musl=x86_64-unknown-linux-musl
gnu=x86_64-unknown-linux-gnu
mkdir -p dist

has_musl_target() {
    [ -d "$(rustc --print sysroot)/lib/rustlib/$musl" ]
}

if ! has_musl_target && command -v rustup >/dev/null 2>&1; then
    echo "build: adding the $musl target with rustup" >&2
    rustup target add "$musl" >&2 || true
fi

if has_musl_target; then
    if ! command -v musl-gcc >/dev/null 2>&1; then
        export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-gcc}"
    fi
    cargo build --release --locked --target "$musl" --bin ims-action >&2
    cp "target/$musl/release/ims-action" dist/ims-action
    echo "build: static musl binary: dist/ims-action ($(stat -c %s dist/ims-action) bytes)" >&2
else
    echo "build: the $musl target is not available here; falling back to glibc +crt-static" >&2
    echo "build: (static, but DNS lookups load the host's NSS libraries: prefer musl)" >&2
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --locked --target "$gnu" --bin ims-action >&2
    cp "target/$gnu/release/ims-action" dist/ims-action
    echo "build: static glibc binary: dist/ims-action ($(stat -c %s dist/ims-action) bytes)" >&2
fi
