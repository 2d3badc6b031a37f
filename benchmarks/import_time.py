"""Time `import titanicml` and `titanicml --help` against a bare interpreter start.

Run: python benchmarks/import_time.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

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
    print(f"python -c pass          {baseline * 1000:7.1f} ms (baseline)")
    extra = (imported - baseline) * 1000
    print(f"import titanicml        {imported * 1000:7.1f} ms (+{extra:.1f} ms)")
    print(f"titanicml --help        {helped * 1000:7.1f} ms (+{(helped - baseline) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
