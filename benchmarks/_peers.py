"""Peer libraries live in their own virtual environments, never in reprlab's.

``peer_python("pythae", ["pythae==0.1.2"])`` creates ``benchmarks/.venv-pythae`` (once) with
the pinned torch and the peer, and returns its python, or None with a printed reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


def peer_python(name: str, packages: list[str]) -> str | None:
    venv = HERE / f".venv-{name}"
    py = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return str(py)
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *TORCH, *packages], check=True)
        stamp.touch()
        return str(py)
    except subprocess.CalledProcessError as e:
        print(f"[{name}] peer could not be installed: {e}", file=sys.stderr)
        return None
