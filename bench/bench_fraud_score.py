"""Benchmark: `adaptlab fraud score` streams files far larger than memory in bounded memory.

Builds input files of 1M, 10M and 50M rows by repeating the real ULB rows (all columns, Class included) and
scores each with the CLI in a fresh process, output to a file of the same format. Reported per size and
format: input size on disk, wall time, rows/s and the peak resident memory of the scoring process (psutil,
sampled every 50 ms, process tree). The model is a `fraud run --epochs 1` on the ULB data with the reference
network (the scoring cost depends on the network's size, not on how well it was trained).

Run:  .venv/bin/python bench/bench_fraud_score.py [--sizes 1e6,1e7,5e7] [--formats parquet,csv] [--work DIR]
      [--update-doc]      (needs ~25 GB free in --work for 50M rows of parquet in and out)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from doc_blocks import replace_block  # bench/ is the script's folder, first on sys.path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
ADAPTLAB = [sys.executable, "-m", "adaptlab"]


def build_input(source: pa.Table, rows: int, path: Path) -> None:
    """``rows`` rows: the source table repeated (the last copy cut), written block by block."""
    writer = (pq.ParquetWriter(path, source.schema) if path.suffix == ".parquet"
              else pacsv.CSVWriter(path, source.schema))
    written = 0
    while written < rows:
        block = source.slice(0, min(len(source), rows - written))
        writer.write_table(block)
        written += len(block)
    writer.close()


def peak_rss_of(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes of the process and its children) of running ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    watched, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,5e7", help="rows per input file, comma-separated")
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--csv-max-rows", type=float, default=1e7, help="largest CSV file (CSV is ~2x the size)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the big files (default: a temp dir)")
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    from adaptlab.fraud.data import load_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-score-", dir=args.work))
    try:
        frame, _ = load_dataset(quiet=True)
        source = pa.Table.from_pandas(frame, preserve_index=False)
        run = subprocess.run([*ADAPTLAB, "fraud", "run", "--epochs", "1", "--output-dir", str(work / "runs"),
                              "--quiet"], check=True, capture_output=True, text=True).stdout.strip()
        rows_table = []
        for size in (int(float(s)) for s in args.sizes.split(",")):
            for fmt in args.formats.split(","):
                if fmt == "csv" and size > args.csv_max_rows:
                    continue
                data, out = work / f"in-{size}.{fmt}", work / f"scores-{size}.{fmt}"
                build_input(source, size, data)
                wall, peak = peak_rss_of([*ADAPTLAB, "fraud", "score", run, str(data), "--output", str(out),
                                          "--quiet"])
                scored = pq.ParquetFile(out).metadata.num_rows if fmt == "parquet" else None
                if scored is not None and scored != size:
                    raise SystemExit(f"scored {scored} rows of {size}")
                rows_table.append((fmt, size, data.stat().st_size, wall, size / wall, peak))
                print(f"{fmt:8s} {size:>12,} rows  {data.stat().st_size / 2**30:6.2f} GiB  {wall:7.1f} s  "
                      f"{size / wall:>10,.0f} rows/s  peak RSS {peak / 2**20:,.0f} MiB", flush=True)
                data.unlink()
                out.unlink()
                if args.update_doc:  # after every size: a long run that is stopped still leaves what it measured
                    write_doc(rows_table)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_doc(rows_table) -> None:
    from adaptlab.core.system import machine_description

    machine = machine_description()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"Measured {dt.date.today()} on {machine} (load average at the end {load}: the machine was "
             "shared with other jobs, so rates are lower bounds) with `python bench/bench_fraud_score.py "
             "--update-doc` (the ULB rows repeated; output in the input's format; chunks of 200,000 rows). Peak "
             "RSS is the scoring process's whole resident memory (Python, torch and pyarrow included).", "",
             "| format | rows | input size | wall time | rows/s | peak RSS |", "|---|---:|---:|---:|---:|---:|"]
    for fmt, size, nbytes, wall, rate, peak in rows_table:
        lines.append(f"| {fmt} | {size:,} | {nbytes / 2**30:.2f} GiB | {wall:.1f} s | {rate:,.0f} | "
                     f"{peak / 2**20:,.0f} MiB |")
    replace_block(DOC, "bench_fraud_score", "\n".join(lines), "## `fraud score` streaming")


if __name__ == "__main__":
    main()
