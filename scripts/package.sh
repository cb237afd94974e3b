#!/usr/bin/env bash
# Packages a built static binary for every deployment path.
#
#   scripts/package.sh [BINARY]
#       BINARY defaults to target/x86_64-unknown-linux-musl/release/ims-action, else dist/ims-action
#       (what `make build` writes).
#
# Writes:
#   dist/ims-action.zip            `exec` (mode 755) and its seal at the zip root: wsk --native /
#                                  --docker <ActionLoop image>, manifest.yaml (wskdeploy). Both proxies
#                                  look for ./exec, and keep the zip's other files next to it.
#   dist/ims-action-launcher.zip   index.js + bin/exec + bin/ims-action.seal.json: a nodejs:20/22 action
#                                  (the Node launcher) for `wsk action create --kind nodejs:20`.
#   dist/blackbox/                 exec + seal + a placeholder index.js: the folder `function` of the
#                                  blackbox variant in ext.config.yaml (aio zips it itself).
#
# The seal (ims-action.seal.json, see docs/security.md) fingerprints every input the
# deployment binds: manifest.yaml's for the zips (wskdeploy, scripts/deploy-wsk.sh), app.config.yaml's
# for dist/blackbox (aio), `$VAR`s resolved from the environment and then ENV_FILE (default .env)
# as the deploy tools resolve them. Package again whenever .env changes.
set -euo pipefail
cd "$(dirname "$0")/.."

default=target/x86_64-unknown-linux-musl/release/ims-action
if [ $# -ge 1 ]; then
    bin=$1
elif [ -f "$default" ]; then
    bin=$default
else
    bin=dist/ims-action
fi
if [ ! -f "$bin" ]; then
    echo "package: no binary at $bin; build it first (make build)" >&2
    exit 1
fi
magic=$(od -An -tx1 -N4 "$bin" | tr -d ' \n')
if [ "$magic" != "7f454c46" ]; then
    echo "package: $bin is not a Linux (ELF) binary" >&2
    exit 1
fi

mkdir -p dist
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

env_file=${ENV_FILE:-.env}
env_args=()
if [ -f "$env_file" ]; then
    env_args=(--env "$env_file")
else
    echo "package: no $env_file: sealing the descriptors' literal inputs only (deploy with no other params)" >&2
fi
seal_of() { # CONFIG OUT
    "$bin" seal --config "$1" ${env_args[@]+"${env_args[@]}"} --out "$2"
}
seal_of manifest.yaml "$stage/seal.json"

# zip_dir DIR OUT: zips the contents of DIR (paths relative to DIR) into OUT, keeping file modes.
zip_dir() {
    local dir=$1 out
    out="$(pwd)/$2"
    rm -f "$out"
    if command -v zip >/dev/null 2>&1 && [ -z "${PACKAGE_NO_ZIP:-}" ]; then
        (cd "$dir" && zip -q -X -r "$out" .)
    elif ! command -v python3 >/dev/null 2>&1; then
        echo "package: needs zip or python3" >&2
        exit 1
    else
        python3 - "$dir" "$out" <<'PY'
import os, stat, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for base, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, src))
            info.create_system = 3  # Unix: unzip honours the mode bits below
            info.external_attr = (stat.S_IFREG | stat.S_IMODE(os.stat(path).st_mode)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
PY
    fi
}

# 1. exec at the root
mkdir -p "$stage/native"
install -m 0755 "$bin" "$stage/native/exec"
install -m 0644 "$stage/seal.json" "$stage/native/ims-action.seal.json"
zip_dir "$stage/native" dist/ims-action.zip

# 2. the Node launcher with bin/exec
mkdir -p "$stage/launcher/bin"
install -m 0644 actions/ims-action/index.js "$stage/launcher/index.js"
install -m 0755 "$bin" "$stage/launcher/bin/exec"
install -m 0644 "$stage/seal.json" "$stage/launcher/bin/ims-action.seal.json"
zip_dir "$stage/launcher" dist/ims-action-launcher.zip

# 3. the blackbox folder for aio
rm -rf dist/blackbox
mkdir -p dist/blackbox
install -m 0755 "$bin" dist/blackbox/exec
seal_of app.config.yaml dist/blackbox/ims-action.seal.json
cat > dist/blackbox/index.js <<'EOF'
// Placeholder: `aio app build` zips a folder action only when it holds an index.js or a
// package.json. The docker image runs ./exec (the ims-action binary); this file is never run.
EOF

# Check what a deployment will unpack: exec and bin/exec must be executable.
command -v python3 >/dev/null 2>&1 && python3 - dist/ims-action.zip dist/ims-action-launcher.zip <<'PY'
import stat, sys, zipfile
for path in sys.argv[1:]:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename in ("exec", "bin/exec"):
                mode = (info.external_attr >> 16) & 0o777
                if not mode & stat.S_IXUSR:
                    sys.exit(f"package: {path}: {info.filename} has mode {mode:o}, not executable")
PY

size() { wc -c < "$1" | tr -d ' '; }
echo "package: from $bin ($(size "$bin") bytes)"
echo "package: dist/ims-action.zip           $(size dist/ims-action.zip) bytes  (exec 755, seal)"
echo "package: dist/ims-action-launcher.zip  $(size dist/ims-action-launcher.zip) bytes  (index.js, bin/exec 755, bin/ seal)"
echo "package: dist/blackbox/                exec + seal + placeholder index.js"
# Adobe I/O Runtime takes 22 MB per action archive; OpenWhisk 48 MB of base64 (about 36 MB zipped).
for z in dist/ims-action.zip dist/ims-action-launcher.zip; do
    if [ "$(size "$z")" -gt 22000000 ]; then
        echo "package: warning: $z is over Adobe I/O Runtime's 22 MB code limit" >&2
    fi
done
