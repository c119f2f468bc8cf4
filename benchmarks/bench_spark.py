"""The audit on Spark next to the numpy kernel, in the same run (docs/benchmarks.md, issue 22).

    python benchmarks/bench_spark.py                       # 20k and 100k people, local[2]
    python benchmarks/bench_spark.py --people 1000000 --master 'local[2]'

Prints ``uptime`` first and last. For every size: a synthetic folder (spillover synth,
cached under /tmp), the numpy audit (fast load + one kernel pass, written to CSV), then
the Spark audit of the same folder as a user runs it (``audit_path`` to CSV, the shuffle
partitions sized to the folder) on one session started once and timed apart. The two
CSVs are compared byte for byte; the Spark jobs, stages and tasks of the audit are
counted (``statusTracker``), and the ratio to the numpy audit of the same run printed,
with the CPU seconds the Spark JVM spent on the audit (``/proc``: less moved by the load
than the wall time), split by the JVM's kinds of thread (the tasks, the JIT's compilers,
the garbage collector, the driver's calls: ``/proc`` sampled every second), and how
many classes Spark compiled from generated code (its ``CodegenMetrics``).
``--event-log DIR`` keeps Spark's event log of the run (the stages' times and shuffle
bytes). ``--floor`` then times, in the same warm session, what every Spark audit of the
folder does before its search: the tables read and kept as text (Spark's CSV reader and
its cache), then the contract's checks and the typed tables the search starts from
(``typed_graph``), each against the numpy audit of the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from spillover.audit.batch import audit_folder
from spillover.policy import default_policy
from spillover.synth.generate import generate


def _folder(people: int, seed: int, form: str = "csv") -> Path:
    """The synthetic folder of ``people`` (cached under /tmp), its tables in ``form``."""
    tail = "" if form == "csv" else f"-{form}"
    folder = Path(f"/tmp/spillover-bench-spark-{people}-{seed}{tail}")
    if not (folder / f"blacklist.{form}").exists():
        shutil.rmtree(folder, ignore_errors=True)
        began = time.perf_counter()
        generate(people, seed, folder, format=form)
        print(f"  synth {people:,} ({form}): {time.perf_counter() - began:.1f} s")
    return folder


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _counts(spark: object, since: int) -> tuple[int, int, int]:
    """Jobs, stages and tasks Spark ran since job id ``since``."""
    tracker = spark.sparkContext.statusTracker()  # type: ignore[attr-defined]
    jobs = [j for j in tracker.getJobIdsForGroup(None) if j >= since]
    stages = tasks = 0
    for j in jobs:
        info = tracker.getJobInfo(j)
        for sid in info.stageIds if info else ():
            stage = tracker.getStageInfo(sid)
            if stage is not None and stage.numCompletedTasks > 0:
                stages += 1
                tasks += stage.numCompletedTasks
    return len(jobs), stages, tasks


def _compiled(spark: object) -> int:
    """How many classes Spark has compiled from generated code in this JVM (its
    ``CodegenMetrics``: one per miss of its cache of compiled code)."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    return int(
        jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME().getCount()
    )


#: the Spark JVM's threads by what they do, by the start of their names (``/proc``'s
#: ``comm``, 15 characters): the tasks, the JIT's compilers, the garbage collector, and
#: py4j's threads, which run the driver's calls (planning, code generation and its
#: compiling by Janino); the rest is "other"
_THREAD_KINDS = (
    ("tasks", ("Executor task",)),
    ("JIT", ("C1 Compiler", "C2 Compiler", "Sweeper")),
    ("GC", ("G1 ", "GC Thread", "VM Thread")),
    ("driver", ("Thread-",)),
)


class _JvmThreads:
    """CPU seconds of the Spark JVM's threads by kind (:data:`_THREAD_KINDS`), sampled
    every second in a thread of this process: a JVM thread that ends (an idle task thread
    does) keeps its last sample."""

    def __init__(self) -> None:
        self._jvms = list(_children())  # the session has started its JVM already
        self._last: dict[tuple[str, str], tuple[str, float]] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="jvm-threads", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        for pid in self._jvms:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                stat = _stat(f"/proc/{pid}/task/{tid}/stat")
                if stat is not None:
                    self._last[pid, tid] = (stat[0], _cpu_seconds(stat[1]))

    def totals(self) -> Counter[str]:
        """CPU seconds so far by kind of thread."""
        self.sample()
        out: Counter[str] = Counter()
        for name, cpu in list(self._last.values()):
            kind = next((k for k, starts in _THREAD_KINDS if name.startswith(starts)), "other")
            out[kind] += cpu
        return out

    def stop(self) -> None:
        self._stop.set()


def _stat(path: str) -> tuple[str, list[str]] | None:
    """A ``/proc`` stat file's name (``comm``) and the fields after it (None: gone)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 1 :].split()


def _cpu_seconds(fields: list[str]) -> float:
    """User + system CPU seconds of a stat's fields (after the name)."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> dict[str, list[str]]:
    """This process's child processes (the Spark JVM): per pid its stat's fields."""
    me, out = os.getpid(), dict[str, list[str]]()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        stat = _stat(f"/proc/{pid}/stat")
        if stat is not None and int(stat[1][1]) == me:
            out[pid] = stat[1]
    return out


def _jvm_cpu() -> float:
    """CPU seconds (user + system) of this process's child processes (the Spark JVM)."""
    return sum(_cpu_seconds(fields) for fields in _children().values())


def _floor(spark: object, folder: Path) -> tuple[float, float]:
    """Seconds of what a Spark audit of ``folder`` does before its search: the tables
    read and kept as text (``read_tables``, ``text_frames``, each counted), then the
    contract's checks and the typed tables (``typed_graph`` with its checks, each frame
    counted). No rewrite of the search takes these away."""
    from spillover.audit.spark import Kept, read_tables
    from spillover.audit.spark.frames import text_frames
    from spillover.audit.spark.graph import typed_graph
    from spillover.facts.phones import DEFAULT_REGION

    with Kept():
        began = time.perf_counter()
        tables = text_frames(spark, read_tables(spark, str(folder)))  # type: ignore[arg-type]
        for df in tables.values():
            df.count()
        read_s = time.perf_counter() - began
        began = time.perf_counter()
        graph = typed_graph(spark, tables, DEFAULT_REGION, True)  # type: ignore[arg-type]
        for name in ("periods", "loans", "links", "entries", "sharing"):
            getattr(graph, name).count()
        return read_s, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--format",
        choices=["csv", "jsonl", "parquet"],
        default="csv",
        help="the tables' form (the numpy audit of JSONL runs the exact loader)",
    )
    parser.add_argument("--memory", default="2g", help="spark.driver.memory")
    parser.add_argument("--conf", nargs="*", default=[], help="more Spark settings, KEY=VALUE")
    parser.add_argument("--event-log", help="keep Spark's event log in this folder")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the read and the checks alone (what the search is not)",
    )
    args = parser.parse_args()
    if args.event_log:  # Spark refuses an event log folder that does not exist
        Path(args.event_log).mkdir(parents=True, exist_ok=True)
    print(f"uptime: {_uptime()}  cpus: {os.cpu_count()}", flush=True)
    from spillover.audit.spark import audit_path, session

    policy = default_policy()
    folders = {people: _folder(people, args.seed, args.format) for people in args.people}
    began = time.perf_counter()
    spark = session(
        args.master,
        {
            "spark.driver.memory": args.memory,
            "spark.ui.enabled": "false",
            # the status tracker keeps this many jobs (the counts below)
            "spark.ui.retainedJobs": "100000",
            "spark.ui.retainedStages": "100000",
            **(
                {"spark.eventLog.enabled": "true", "spark.eventLog.dir": args.event_log}
                if args.event_log
                else {}
            ),
            **dict(c.split("=", 1) for c in args.conf),
        },
        app="spillover-bench",
    )
    print(f"Spark session start on {args.master}: {time.perf_counter() - began:.1f} s", flush=True)
    threads = _JvmThreads()
    for people, folder in folders.items():
        want = Path(f"/tmp/spillover-bench-spark-{people}-{args.format}-numpy.csv")
        began = time.perf_counter()
        summary = audit_folder(folder, want, policy)
        numpy_s = time.perf_counter() - began
        got = Path(f"/tmp/spillover-bench-spark-{people}-{args.format}-spark.csv")
        first_job = max(spark.sparkContext.statusTracker().getJobIdsForGroup(None), default=-1) + 1
        began, cpu, compiled = time.perf_counter(), _jvm_cpu(), _compiled(spark)
        by_kind = threads.totals()
        audit_path(spark, str(folder), got, policy)
        spark_s, cpu = time.perf_counter() - began, _jvm_cpu() - cpu
        compiled = _compiled(spark) - compiled
        by_kind = threads.totals() - by_kind
        jobs, stages, tasks = _counts(spark, first_job)
        same = got.read_bytes() == want.read_bytes()
        print(
            f"{people:>9,} people, {summary.rows:,} entries: numpy audit {numpy_s:.1f} s; "
            f"spark {spark_s:.1f} s (x{spark_s / numpy_s:.1f} the numpy audit; JVM CPU {cpu:.0f} s; "
            f"{jobs} jobs, {stages} stages, {tasks} tasks; {compiled} classes compiled; "
            f"shuffle partitions "
            f"{spark.conf.get('spark.sql.shuffle.partitions')}); "
            f"CSV byte for byte the same: {same}  [load {os.getloadavg()[0]:.1f}]",
            flush=True,
        )
        kinds = [k for k, _ in _THREAD_KINDS] + ["other"]
        print(
            "    JVM CPU by thread: "
            + ", ".join(f"{k} {by_kind[k]:.1f} s" for k in kinds)
            + f" (sampled every second: {sum(by_kind.values()):.0f} s)",
            flush=True,
        )
        if args.floor:
            read_s, checks_s = _floor(spark, folder)
            print(
                f"    floor (the same session, warm): read and kept as text {read_s:.1f} s "
                f"(x{read_s / numpy_s:.1f} the numpy audit); + the checks and the typed "
                f"tables {checks_s:.1f} s (together {read_s + checks_s:.1f} s, "
                f"x{(read_s + checks_s) / numpy_s:.1f})  [load {os.getloadavg()[0]:.1f}]",
                flush=True,
            )
    threads.stop()
    spark.stop()
    print(f"uptime: {_uptime()}")


if __name__ == "__main__":
    main()
