"""Where a pyl command's start-up goes: `bench/importtime.py pyl-info -P PATH -n NAME`.

Runs the installed console script under `python -X importtime` a few times and prints, per
top-level import (as the command reaches it), the median cumulative cost, plus the median
wall time of the whole command without -X importtime. Used for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / ".venv" / "bin"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 64
    runs = 7
    script = str(BIN / argv[0]) if os.sep not in argv[0] else argv[0]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cumulative: dict[str, list[int]] = defaultdict(list)
    walls = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([script, *argv[1:]], env=env, capture_output=True)
        walls.append(time.perf_counter() - began)
        proc = subprocess.run([str(BIN / "python"), "-X", "importtime", script, *argv[1:]],
                              env=env, capture_output=True, text=True)
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _self, cum, raw = line[len("import time:"):].split("|")
            depth = (len(raw) - len(raw.lstrip()) - 1) // 2
            if depth == 0:  # what the command itself imports; children are inside the number
                name = raw.strip()
                cumulative[name].append(int(cum))
    print(f"{' '.join(argv)}: median wall {statistics.median(walls) * 1000:.1f} ms over {runs} runs")
    rows = sorted(((statistics.median(v), k) for k, v in cumulative.items()), reverse=True)
    for us, name in rows[:20]:
        print(f"  {us / 1000:7.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
