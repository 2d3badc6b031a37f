"""Run a benchmark's case in a fresh interpreter and read the JSON it prints last."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_json_child(script: str, *args: str, what: str) -> Any:
    """Run ``python script --child *args``; return its last stdout line, parsed as JSON.

    A child that fails ends the benchmark with ``what`` and the end of its stderr.
    """
    out = subprocess.run(
        [sys.executable, script, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
