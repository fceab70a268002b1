"""Run every benchmarks/bench_*.py in turn; each prints its own ratio table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
only = sys.argv[1:]
for script in sorted(here.glob("bench_*.py")):
    if only and not any(o in script.name for o in only):
        continue
    print(f"\n=== {script.name} ===", flush=True)
    if subprocess.run([sys.executable, str(script)]).returncode != 0:
        failed.append(script.name)
if failed:
    print(f"\nfailed: {', '.join(failed)}")
    sys.exit(1)
