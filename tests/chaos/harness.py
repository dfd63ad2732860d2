"""Helpers of the chaos suite: the interpreter and environment its child processes run with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def child_env() -> dict[str, str]:
    """The environment for children: this checkout's packages first."""
    path = os.pathsep.join([str(ROOT / "platform"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
