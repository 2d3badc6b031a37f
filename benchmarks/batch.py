"""Batch scoring throughput and peak memory against in-process ``predict_frame``.

Builds a Titanic-shaped file of N rows (resampled from the embedded data) as CSV and
Parquet, then measures, each in its own child process:

(a) ``model.predict_frame`` on the same rows held in memory, in chunks (the baseline);
(b) ``score_file`` CSV -> CSV;
(c) ``score_file`` Parquet -> Parquet.

Peak memory is the child's own peak resident set size (``ru_maxrss``): interpreter,
imports and model included. Targets: batch throughput >= 80 % of the baseline, peak
memory < 1 GB on 5 million rows.

Run: python benchmarks/batch.py [--rows 5000000] [--chunk-size 100000]
     [--workdir DIR] [--model DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _report import write_section

SEED = 0
BLOCK = 1_000_000  # rows generated (and Parquet row group) at a time
TARGET_RATIO = 0.8
TARGET_MEMORY = 1024**3


def build_files(workdir: Path, rows: int) -> tuple[Path, Path]:
    """Write the resampled Titanic rows once as CSV and Parquet (reused when present)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from titanicml.datasets import load_titanic

    csv, parquet = workdir / f"titanic-{rows}.csv", workdir / f"titanic-{rows}.parquet"
    if csv.exists() and parquet.exists():
        return csv, parquet
    titanic = load_titanic()
    rng = np.random.default_rng(SEED)
    started = time.monotonic()
    csv_tmp, parquet_tmp = csv.with_suffix(".csv.tmp"), parquet.with_suffix(".parquet.tmp")
    writer = None
    with open(csv_tmp, "w", encoding="utf-8", newline="") as handle:
        for first in range(0, rows, BLOCK):
            size = min(BLOCK, rows - first)
            block = titanic.iloc[rng.integers(0, len(titanic), size)].reset_index(drop=True)
            block.to_csv(handle, header=first == 0, index=False, lineterminator="\n")
            table = pa.Table.from_pandas(block, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(parquet_tmp, table.schema)
            writer.write_table(table)
    writer.close()
    os.replace(csv_tmp, csv)
    os.replace(parquet_tmp, parquet)
    print(
        f"wrote {rows:,} rows: {csv.name} ({csv.stat().st_size / 1e6:.0f} MB), "
        f"{parquet.name} ({parquet.stat().st_size / 1e6:.0f} MB) "
        f"in {time.monotonic() - started:.0f} s"
    )
    return csv, parquet


def build_model(workdir: Path) -> Path:
    """Train a quick model (20 s) and save it in the workdir (reused when present)."""
    from titanicml import Trainer
    from titanicml.datasets import load_titanic

    path = workdir / "model"
    if (path / "MLmodel").exists():
        return path
    result = Trainer(target="Survived", time_budget=20, track=False).fit(load_titanic())
    result.save(path)
    print(f"trained {result.best_estimator} (CV accuracy {result.metrics['accuracy']:.3f})")
    return path


# --- children: one measurement each, printing one JSON line ---------------------------


def child_baseline(model_dir: str, parquet: str, chunk_size: int) -> dict:
    import pandas as pd

    from titanicml.registry import load_model

    model = load_model(model_dir)
    frame = pd.read_parquet(parquet)
    started = time.perf_counter()
    for first in range(0, len(frame), chunk_size):
        model.predict_frame(frame.iloc[first : first + chunk_size])
    return {"rows": len(frame), "seconds": time.perf_counter() - started}


def child_score(model_dir: str, source: str, output: str, chunk_size: int) -> dict:
    from titanicml.batch import score_file
    from titanicml.registry import load_model

    model = load_model(model_dir)
    predict_frame, predicting = model.predict_frame, [0.0]

    def timed(rows: object) -> object:
        started = time.perf_counter()
        try:
            return predict_frame(rows)
        finally:
            predicting[0] += time.perf_counter() - started

    model.predict_frame = timed  # to split the time: predict_frame vs reading and writing
    started = time.perf_counter()
    summary = score_file(model, source, output, chunk_size=chunk_size, overwrite=True)
    seconds = time.perf_counter() - started
    return {"rows": summary.rows, "seconds": seconds, "predict_seconds": predicting[0]}


def run_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child_main(argv: list[str]) -> None:
    mode, *rest = argv
    chunk_size = int(rest[-1])
    if mode == "baseline":
        result = child_baseline(rest[0], rest[1], chunk_size)
    else:
        result = child_score(rest[0], rest[1], rest[2], chunk_size)
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    print(json.dumps(result))


# --- report ----------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 1024**2:,.0f} MB"


def report(
    rows: int, chunk_size: int, repeat: int, estimator: str, results: dict[str, dict]
) -> str:
    base = results["baseline"]["rows"] / results["baseline"]["seconds"]
    lines = [
        "## Batch scoring (`benchmarks/batch.py`)",
        "",
        f"`score_file` against in-process `predict_frame` on {rows:,} Titanic-shaped rows "
        f"(resampled), chunks of {chunk_size:,} rows, model `{estimator}`; "
        f"{date.today().isoformat()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs ({platform.machine()}). Each case runs in its own process; "
        "peak memory is that process's peak RSS (interpreter, imports and model included). "
        f'Fastest of {repeat} interleaved rounds; "in `predict_frame`" is the share of '
        "the time spent scoring, the rest is reading, key columns and writing.",
        "",
        "| case | rows/s | vs in-process | seconds | in `predict_frame` | peak memory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "baseline": "in-process `predict_frame` (rows in memory)",
        "csv": "`score_file` CSV -> CSV",
        "parquet": "`score_file` Parquet -> Parquet",
    }
    for key, label in labels.items():
        r = results[key]
        rate = r["rows"] / r["seconds"]
        share = r.get("predict_seconds", r["seconds"]) / r["seconds"]
        lines.append(
            f"| {label} | {rate:,.0f} | {rate / base:.0%} | {r['seconds']:.1f} | {share:.0%} "
            f"| {_mb(r['peak_rss'])} |"
        )
    ratios = [results[k]["rows"] / results[k]["seconds"] / base for k in ("csv", "parquet")]
    peaks = [results[k]["peak_rss"] for k in ("csv", "parquet")]
    speed_ok = min(ratios) >= TARGET_RATIO
    memory_ok = max(peaks) < TARGET_MEMORY
    lines += [
        "",
        f"Targets (issue): throughput >= {TARGET_RATIO:.0%} of in-process, "
        f"{'met' if speed_ok else 'missed'} (lowest {min(ratios):.0%}); peak memory "
        f"< 1 GB on 5,000,000 rows, {'met' if memory_ok else 'missed'} "
        f"(highest {_mb(max(peaks))}{'' if rows == 5_000_000 else f' on {rows:,} rows'}).",
        "",
        f"Rerun: `python benchmarks/batch.py --rows {rows}` (`--workdir DIR` keeps the files).",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the fastest is kept")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    parser.add_argument("--model", type=Path, default=None, help="a saved model directory")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    temporary = None
    if args.workdir is None:
        temporary = tempfile.TemporaryDirectory(prefix="titanicml-batch-")
        workdir = Path(temporary.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        csv, parquet = build_files(workdir, args.rows)
        model = args.model or build_model(workdir)
        meta = json.loads((model / "titanicml" / "metadata.json").read_text())
        chunk = str(args.chunk_size)
        cases = {
            "baseline": ("baseline", str(model), str(parquet), chunk),
            "csv": ("score", str(model), str(csv), str(workdir / "out.csv"), chunk),
            "parquet": ("score", str(model), str(parquet), str(workdir / "out.parquet"), chunk),
        }
        results: dict[str, dict] = {}
        # Rounds interleave the cases, so a burst of load elsewhere hits them alike;
        # each case keeps its fastest round and its largest peak memory.
        for round_ in range(1, args.repeat + 1):
            for key, child_args in cases.items():
                r = run_child(*child_args)
                print(
                    f"round {round_} {key:<9} {r['rows'] / r['seconds']:>10,.0f} rows/s "
                    f"{r['seconds']:7.1f} s  peak {_mb(r['peak_rss'])}"
                    + (
                        f"  (predict_frame {r['predict_seconds'] / r['seconds']:.0%})"
                        if "predict_seconds" in r
                        else ""
                    ),
                    flush=True,
                )
                best = results.get(key)
                peak = max(r["peak_rss"], best["peak_rss"] if best else 0)
                if best is None or r["seconds"] < best["seconds"]:
                    results[key] = r
                results[key]["peak_rss"] = peak
        for extra in ("out.csv", "out.parquet"):
            (workdir / extra).unlink(missing_ok=True)
    finally:
        if temporary is not None:
            temporary.cleanup()
    estimator = meta.get("best_estimator", "?")
    markdown = report(args.rows, args.chunk_size, args.repeat, estimator, results)
    print(markdown)
    if not args.no_write:
        write_section("batch", markdown)


if __name__ == "__main__":
    main()
