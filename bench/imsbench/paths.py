"""Where things are."""
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
BUILD = BENCH / ".build"
PEER = BENCH / "peer-node"
RUN_JS = PEER / "run.js"
LOOP_JS = PEER / "loop.js"
CROWD_JS = PEER / "crowd.js"  # many activations at once in one Node process (section crowd)
LAUNCHER = ROOT / "actions" / "ims-action"  # the App Builder Node launcher (index.js); staged by launcher.py
DEFAULT_EMULATOR = ROOT / "target" / "release" / "adobe-emulator"
DEFAULT_IMS_ACTION = ROOT / "dist" / "ims-action"  # `make build` copies the static binary here
FALLBACK_IMS_ACTION = ROOT / "target" / "x86_64-unknown-linux-musl" / "release" / "ims-action"
DEFAULT_ZIP = ROOT / "dist" / "ims-action.zip"
DEFAULT_STORE_BENCH = ROOT / "target" / "release" / "examples" / "store-bench"  # examples/store-bench.rs

MIB = 1024 * 1024
