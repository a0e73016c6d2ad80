"""Ingest throughput: the Spark job beside a single-process Python loop doing the same work.

Both sides list the same files (``femo.platform.files``), do the same per-image work (read, place,
label, sniff, guard, decode, measure, hash: ``femo.ingest.run.inspect_files_frame``) and write the
same rows; the loop writes them to Parquet with pyarrow (the seed's way), the job skips known
files, inspects in mapInPandas on ``local[N]`` and commits to Delta (``images``,
``ingested_files``; ``quarantine`` only when something is rejected). Start-up is outside the
timing on both sides: the JVM start, the catalog, and one warm-up run of each side on a small
generated collection (the JVM compiles its hot paths, Spark forks its Python workers). Then
``--runs`` timed runs, each job run as a new source (fresh rows in shared tables), page cache
warm; the medians are reported, and the median of the per-run ratios.

    PYTHONPATH=. .venv/bin/python benchmarks/ingest.py --data $FEMO_DATA_DIR/fer2013/train
    PYTHONPATH=. .venv/bin/python benchmarks/ingest.py --data ... --upscale 224

Without --data it runs on a generated sample (small; for a smoke test, not for figures).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._common import bench_settings, ingest_folders, start
from femo.ingest.layout import LabelMap
from femo.ingest.run import (
    InspectOptions,
    collection_reader,
    ingest,
    inspect_files_frame,
    inspect_options,
)
from femo.ingest.sample import write_images
from femo.platform.files import list_files
from femo.platform.settings import IngestSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def upscale(source: Path, target: Path, side: int) -> int:
    """Copy the collection with every image resized to ``side`` px (JPEG, quality 90)."""
    count = 0
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if img is None:
            shutil.copy(path, out)
        else:
            big = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(out.with_suffix(".jpg")), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        count += 1
    return count


def warm(root: Path) -> int:
    """Read every file once so both sides start from the page cache."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file():
            total += len(path.read_bytes())
    return total


def loop(root: Path, options: InspectOptions, out: Path) -> int:
    """The single-process baseline: list, read, inspect, write Parquet with pyarrow."""
    labels = LabelMap.from_names(options.labels)
    read = collection_reader(options.root, options.max_file_bytes)
    frame = inspect_files_frame(list_files(str(root)), options, labels, read)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out / "images.parquet")
    return len(frame)


def stat_cpu(stat: str) -> float:
    """CPU seconds (user + system) in the text of a ``/proc/<pid>[/task/<tid>]/stat`` file."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of process ``pid``, or of the whole machine without idle and
    I/O wait; 0 where /proc is missing (not Linux)."""
    try:
        if pid is None:
            values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
        return stat_cpu(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return 0.0


#: JVM thread names (digits folded to N, as /proc truncates them) -> what they do.
JVM_THREADS = {
    "CN CompilerThre": "JIT compilers",
    "Executor task l": "task threads",
    "Thread-N": "py4j (planning, commits)",
    "GC Thread#N": "GC",
    "GN Conc#N": "GC",
}


def thread_cpu(pid: int) -> Counter[str]:
    """CPU seconds of each group of live threads of process ``pid`` (names with digits folded:
    ``C2 CompilerThread0`` and ``1`` are one group); empty where /proc is missing."""
    groups: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = re.sub(r"\d+", "N", stat[stat.index("(") + 1 : stat.rindex(")")])
        groups[JVM_THREADS.get(name, name)] += stat_cpu(stat)
    return groups


def timed_runs(
    spark: SparkSession,
    data: Path,
    options: InspectOptions,
    guards: IngestSettings,
    work: Path,
    runs: int,
    files: int,
) -> tuple[list[float], list[float]]:
    """``runs`` times the loop then the job (a new source each time); their seconds."""
    loops: list[float] = []
    jobs: list[float] = []
    for run in range(runs):
        start = time.perf_counter()
        loop_rows = loop(data, options, work)
        loops.append(time.perf_counter() - start)
        # Neither side syncs what it wrote: flush the loop's Parquet now, outside both timings,
        # or the kernel writes it back while the job runs, on the job's cores (the same for the
        # job's files before the next loop).
        os.sync()

        jvm = spark.sparkContext._jvm.ProcessHandle.current().pid()  # type: ignore[union-attr]
        start, cpu, jvm_cpu = time.perf_counter(), cpu_seconds(), cpu_seconds(jvm)
        threads = thread_cpu(jvm)
        summary = ingest(  # the options (label names) are made before the timing, once
            spark, "femo", f"bench{run}", str(data), "folders", lambda: options, guards, f"run{run}"
        )
        jobs.append(time.perf_counter() - start)
        jvm_cpu = cpu_seconds(jvm) - jvm_cpu
        other_cpu = cpu_seconds() - cpu - jvm_cpu
        threads = thread_cpu(jvm) - threads
        os.sync()
        job_rows = summary.accepted + sum(summary.quarantined.values())
        assert job_rows == loop_rows == files, (job_rows, loop_rows, files)
        print(
            f"run {run + 1}: loop {loops[-1]:.1f} s, job {jobs[-1]:.1f} s, "
            f"ratio {loops[-1] / jobs[-1]:.2f}x; job CPU: JVM {jvm_cpu:.1f} s, "
            f"Python workers and the rest {other_cpu:.1f} s",
            flush=True,
        )
        print(f"  job phases: {summary.phases()}", flush=True)
        top = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in threads.most_common(4))
        print(f"  JVM threads: {top}", flush=True)
    return loops, jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="image folder collection (e.g. FER train/)")
    parser.add_argument("--upscale", type=int, default=0, help="resize images to N px first")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="femo-bench-"))
    try:
        data = args.data
        if data is None:
            data = work / "sample"
            write_images(data, per_class=40)
        if args.upscale:
            scaled = work / f"up{args.upscale}"
            print(f"upscaling {data} to {args.upscale} px ...", flush=True)
            upscale(data, scaled, args.upscale)
            data = scaled
        files = sum(1 for p in data.rglob("*") if p.is_file())
        print(f"workload: {files} files, {warm(data) / 1e6:.1f} MB under {data}", flush=True)

        settings = bench_settings(work / "home", args.cores)
        spark = start(settings)
        guards = settings.ingest
        options = inspect_options(spark, "femo", str(data), "path", guards)

        # Start-up outside the timing, on both sides: the JVM compiles its hot paths and
        # Spark forks its Python workers on a small collection first.
        sample = work / "warmup"
        write_images(sample, per_class=100)
        started = time.perf_counter()
        warmup = ingest_folders(spark, settings, "warmup", sample)
        print(
            f"warm-up: first job in this JVM, {warmup.accepted} images in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        loop(sample, options, work)

        os.sync()  # the upscaled copy and the warm-ups' writes, before any timing
        loops, jobs = timed_runs(spark, data, options, guards, work, args.runs, files)
        loop_s, job_s = statistics.median(loops), statistics.median(jobs)
        print(f"median of {args.runs} runs:")
        for name, seconds in (
            ("loop (1 process, pyarrow Parquet)", loop_s),
            (f"job  (local[{args.cores}], Delta)", job_s),
        ):
            print(f"{name:34s} {files / seconds:8.0f} images/s ({seconds:.1f} s)")
        print(f"ratio job/loop: {loop_s / job_s:.2f}x")
        # Each run times the loop and then the job back to back: the machine's drift (here up
        # to +-25 % over minutes) hits both sides of a pair alike.
        paired = statistics.median(loop / job for loop, job in zip(loops, jobs, strict=True))
        print(f"median of the per-run ratios: {paired:.2f}x")
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
