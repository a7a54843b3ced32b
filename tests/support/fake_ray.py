"""A stand-in `ray` command, for tests of how runs stream, fail and cancel (not of Ray itself).

It behaves by $FAKE_RAY (which a test puts in the .env, as every Ray command gets the .env):
"ok" prints like `ray up`, "fail" like a failed one, "hang" starts a grandchild and never ends.
Every call is recorded in `calls` beside it, with the environment it got.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PYTHON = sys.executable
FAKE_RAY = """#!{python}
import os, subprocess, sys, time
calls = os.path.join(os.path.dirname(sys.argv[0]), "calls")
with open(calls, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
mode = os.environ["FAKE_RAY"]
env = os.environ
print(f"env POOL={{env.get('RAY_POOL_SIZE')}} WAIT={{env.get('AUTOSCALER_NODE_START_WAIT_S')}}")
print("2026-11-27 09:39:22,440\\tINFO updater.py:283 -- [1/7] Waiting for SSH to become available")
print("\\x1b[32mRay runtime started.\\x1b[39m", flush=True)
if mode == "fail":
    print("Exception: wait_ready timeout exceeded.")
    print("Error: Failed to setup head node.")
    sys.exit(1)
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(f"grandchild {{child.pid}}", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def fake_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`ray` resolves to the stand-in: it sits beside a (pretend) interpreter, and PATH is empty."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    ray = bin_dir / "ray"
    ray.write_text(FAKE_RAY.format(python=PYTHON))
    ray.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return ray
