"""The App Builder route as a deployment runs it: the Node launcher (actions/ims-action/index.js,
copied unchanged) with the bench's binary as bin/exec and, next to it, a seal of the inputs the
bench's "deployment" binds (bin/ims-action.seal.json, written by the binary's own `seal`
command, as scripts/build-launcher.sh does for `aio app deploy`). The binary refuses unsealed
inputs behind the launcher, so every set of params the bench sends is an action of its own in
the seal, and the Node runtime stand-in (bench/peer-node/runtime.js) names that action in
__OW_ACTION_NAME. Staged in the run's work folder: actions/ims-action/bin is left alone."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import BenchError
from .paths import LAUNCHER

SEAL_FILE = "ims-action.seal.json"
ACTION_NAME_ENV = "IMSBENCH_ACTION_NAME"  # read by bench/peer-node/runtime.js


def manifest(actions: dict[str, dict[str, str]]) -> tuple[str, str]:
    """A wskdeploy manifest binding each action's params as inputs, and the .env file holding
    the values (the manifest names them as $A<i>_<KEY>, as a deployment's manifest names its
    .env). Pure (bench/tests)."""
    yml = ["packages:", "  bench:", "    actions:"]
    env = []
    for i, (name, params) in enumerate(actions.items()):
        yml += [f"      {name}:", "        inputs:"]
        for key, value in params.items():
            value = str(value)
            if "\n" in value or '"' in value or "\\" in value:
                raise BenchError(f"input {key} of {name} does not fit on one .env line")
            var = f"A{i}_{key}"
            yml.append(f"          {key}: ${var}")
            env.append(f'{var}="{value}"')
    return "\n".join(yml) + "\n", "\n".join(env) + "\n"


def stage(exe: str, actions: dict[str, dict[str, str]], dest: Path) -> Path:
    """dest/index.js (the launcher), dest/bin/exec (the binary), dest/bin/ims-action.seal.json
    (the seal of `actions`: name → params). Returns the launcher module's path."""
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(LAUNCHER / "index.js", dest / "index.js")
    shutil.copy2(exe, bin_dir / "exec")
    os.chmod(bin_dir / "exec", 0o755)
    yml, env = manifest(actions)
    (dest / "manifest.yaml").write_text(yml)
    env_file = dest / "seal.env"  # *.env: never copied into the kept logs
    env_file.write_text(env)
    r = subprocess.run([str(bin_dir / "exec"), "seal", "--config", str(dest / "manifest.yaml"),
                        "--env", str(env_file), "--out", str(bin_dir / SEAL_FILE)],
                       env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    env_file.unlink()
    if r.returncode != 0:
        raise BenchError(f"ims-action seal failed ({r.returncode}): {r.stderr.strip()[-300:]}")
    return dest / "index.js"
