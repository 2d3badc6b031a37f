"""Time `import titanicml` and `titanicml --help` against a bare interpreter start.

Run: python benchmarks/import_time.py
"""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
import time
from datetime import date

from _report import write_section

REPEAT = 15


def _time(argv: list[str]) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    baseline = _time([sys.executable, "-c", "pass"])
    imported = _time([sys.executable, "-c", "import titanicml"])
    helped = _time([sys.executable, "-m", "titanicml", "--help"])
    lines = [
        "| command | median (ms) | over a bare interpreter (ms) |",
        "|---|---|---|",
        f"| `python -c pass` (baseline) | {baseline * 1000:.1f} | 0 |",
        f"| `python -c 'import titanicml'` | {imported * 1000:.1f} | "
        f"{(imported - baseline) * 1000:.1f} |",
        f"| `python -m titanicml --help` | {helped * 1000:.1f} | "
        f"{(helped - baseline) * 1000:.1f} |",
    ]
    print("\n".join(lines))
    write_section(
        "import",
        "## Start-up (`benchmarks/import_time.py`)\n\n"
        f"Median of {REPEAT} runs each, {date.today()}, {platform.machine()}. "
        "`import titanicml` loads no heavy package (a test checks it).\n\n" + "\n".join(lines),
    )


if __name__ == "__main__":
    main()
