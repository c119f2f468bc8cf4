#!/usr/bin/env python3
"""Benchmark of ``spillover serve``: POST /v1/checks latency (p50, p99) and throughput over
loopback HTTP, with a bounded number of concurrent clients, one kept-alive HTTP/1.1
connection each: ``--client raw`` (default) writes the requests and reads the answers on
asyncio streams (the least CPU a Python client can spend), ``--client httpx`` uses
httpx's AsyncClient (the figures of issue 22's table; it costs more CPU per request than
the server's HTTP stack). The clients share the machine with the server: their CPU time
per check is printed apart (``client_cpu_ms_per_check``), beside the server's.

The proposed listings are the recorded entries of the folder (platform, subject, day),
sampled with a fixed seed; each is checked as if it were only proposed. The server runs
as a child process (one uvicorn worker) on the embedded backend (``--data``) or on
Neo4j (``--neo4j``: NEO4J_URI/NEO4J_USER/NEO4J_PASSWORD; ingest the same folder first
with ``spillover ingest DIR --wipe -y``).

The floor is measured in the same run, in this process: the library's own ``check``
(``spillover.engines.search.check`` on the memory backend of the same folder) over the
same proposals, one after the other; the output gives the service's figures as ratios
to it, and ``uptime`` before and after (on a shared machine, compare ratios).
``--http`` picks the server's HTTP stack (``spillover serve --http``); ``--profile FILE``
records the server with py-spy during the measured run (speedscope JSON).

Usage::

    spillover synth --people 100000 --seed 11 --out /tmp/synth100k
    python benchmarks/bench_service.py --data /tmp/synth100k
    python benchmarks/bench_service.py --data /tmp/synth100k --workers 2
    python benchmarks/bench_service.py --data /tmp/synth100k --client httpx --http h11
    spillover ingest /tmp/synth100k --wipe -y        # NEO4J_* set
    python benchmarks/bench_service.py --data /tmp/synth100k --neo4j

Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

TOKEN = "bench-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_args(body: dict[str, Any]) -> tuple[str, str, str, date]:
    """A proposal's arguments to the library's ``check`` (after the graph, before the
    policy): platform, subject kind, subject, listing day."""
    return (
        body["platform_id"],
        body["subject"]["kind"],
        body["subject"]["id"],
        date.fromisoformat(body["listed_at"]),
    )


def proposals(folder: Path, n: int, seed: int) -> list[dict[str, Any]]:
    with open(folder / "blacklist.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(seed)
    return [
        {
            "platform_id": r["platform_id"],
            "subject": {"kind": r["subject_kind"], "id": r["subject"]},
            "listed_at": r["listed_at"],
        }
        for r in rng.sample(rows, min(n, len(rows)))
    ]


async def run(
    url: str, bodies: list[dict[str, Any]], concurrency: int, client: str = "raw"
) -> tuple[list[float], float, dict[int, int]]:
    """Post ``bodies`` to /v1/checks from ``concurrency`` clients at once: the latency of
    each answer, the wall time of all, the answers' statuses."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def httpx_client() -> None:
        async with httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)
        ) as c:
            while not queue.empty():
                body = queue.get_nowait()
                t = time.perf_counter()
                r = await c.post("/v1/checks", json=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    async def raw_client() -> None:
        conn = RawConnection(url)
        try:
            while not queue.empty():
                body = json.dumps(queue.get_nowait(), separators=(",", ":")).encode()
                t = time.perf_counter()
                status = await conn.post_json("/v1/checks", body)
                latencies.append(time.perf_counter() - t)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    one = raw_client if client == "raw" else httpx_client
    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began, statuses


class RawConnection:
    """One kept-alive HTTP/1.1 connection on asyncio streams: a POST written in one go,
    its answer read by its ``content-length`` (reconnects after ``connection: close``)."""

    def __init__(self, url: str) -> None:
        hostport = url.split("://", 1)[1].rstrip("/")
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.head = (
            f"Host: {hostport}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: bytes) -> int:
        """POST ``body`` to ``path``; the answer's status (its body read and dropped)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            b"POST %s HTTP/1.1\r\n%s%d\r\n\r\n%s" % (path.encode(), self.head, len(body), body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if length is None:
            raise RuntimeError(f"an answer without content-length: {head!r}")
        await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        """Close the connection (the next post opens another)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data",
        type=Path,
        required=True,
        help="the synthetic folder (proposals; the embedded graph)",
    )
    ap.add_argument("--neo4j", action="store_true", help="serve from Neo4j (NEO4J_*) instead")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warm", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="the clients: HTTP/1.1 on asyncio streams (raw) or httpx's AsyncClient",
    )
    ap.add_argument(
        "--http",
        choices=["auto", "httptools", "h11"],
        default=None,
        help="the server's HTTP stack (spillover serve --http; default: serve's own)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the server with py-spy during the measured run (speedscope JSON)",
    )
    ap.add_argument(
        "--no-floor", action="store_true", help="skip the library's own check (the floor)"
    )
    args = ap.parse_args()
    uptime_before = _uptime()

    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    source = [] if args.neo4j else ["--data", str(args.data)]
    # one broker's token for every platform of the folder (a token checks only for the
    # platforms it names, docs/service.md)
    with open(args.data / "platforms.csv", newline="", encoding="utf-8") as f:
        platforms = "+".join(sorted({r["platform_id"] for r in csv.DictReader(f)}))
    env = {**os.environ, "SPILLOVER_TOKENS": f"bench@{platforms}:{TOKEN}"}
    if not args.neo4j:
        env.pop("NEO4J_URI", None)
    began = time.perf_counter()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spillover",
            "serve",
            "--port",
            str(port),
            "--check-log",
            str(tmp / "checks.jsonl"),
            "--workers",
            str(args.workers),
            *(["--http", args.http] if args.http else []),
            *source,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "server.log", "wb"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit((tmp / "server.log").read_text()[-3000:])
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        # with --workers N, every worker serving (each logs its start-up): a worker still
        # loading its graph takes no connections, and the clients keep theirs
        while (tmp / "server.log").read_text().count("Application startup complete") < args.workers:
            if server.poll() is not None:
                raise SystemExit((tmp / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        ready = time.perf_counter() - began
        bodies = proposals(args.data, args.warm + args.requests, args.seed)
        asyncio.run(run(url, bodies[: args.warm], args.concurrency, args.client))
        profiler = _py_spy(server.pid, args.profile) if args.profile else None
        by_process = _tree_cpu_by_process(server.pid)
        user_sys = _tree_cpu_user_sys(server.pid)
        client_before = time.process_time()
        lat, wall, statuses = asyncio.run(
            run(url, bodies[args.warm :], args.concurrency, args.client)
        )
        client_cpu = time.process_time() - client_before
        spent = {
            p: cpu - by_process.get(p, 0.0) for p, cpu in _tree_cpu_by_process(server.pid).items()
        }
        server_cpu = sum(spent.values())
        user_after, sys_after = _tree_cpu_user_sys(server.pid)
        server_user, server_sys = user_after - user_sys[0], sys_after - user_sys[1]
        rss = _rss_mb(server.pid)
        if profiler is not None:
            profiler.send_signal(2)  # SIGINT: py-spy writes its file and exits
            profiler.wait(60)
    finally:
        server.terminate()
        server.wait(30)
    floor = None if args.no_floor else library_floor(args.data, bodies)
    lat.sort()
    out: dict[str, Any] = {
        "backend": "neo4j" if args.neo4j else "embedded",
        "requests": len(lat),
        "concurrency": args.concurrency,
        "workers": args.workers,
        "client": args.client,
        "http": args.http or "default",
        "statuses": statuses,
        "p50_ms": round(lat[len(lat) // 2] * 1e3, 2),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 2),
        "max_ms": round(lat[-1] * 1e3, 2),
        "throughput_per_s": round(len(lat) / wall, 1),
        # CPU time of the server's processes per check: on a loaded machine the figure
        # that least depends on how long the processes waited for a core
        "server_cpu_ms_per_check": round(server_cpu / len(lat) * 1e3, 3),
        # CPU seconds of each server process during the run (the supervisor first, then
        # the workers with --workers N: how evenly the connections spread)
        "server_cpu_s_by_process": [round(spent[p], 2) for p in sorted(spent)],
        # of it, in user space (Python, the parsers) and in the kernel (sockets, fsync)
        "server_user_ms_per_check": round(server_user / len(lat) * 1e3, 3),
        "server_sys_ms_per_check": round(server_sys / len(lat) * 1e3, 3),
        # the clients' CPU (this process) per check: they share the cores with the server
        "client_cpu_ms_per_check": round(client_cpu / len(lat) * 1e3, 3),
        # the cores the server and the clients kept busy, on average, during the run
        "cores_busy": round((server_cpu + client_cpu) / wall, 2),
        "cores": os.cpu_count(),
        "server_ready_s": round(ready, 1),
        "server_rss_mb": rss,
        "check_log_lines": len((tmp / "checks.jsonl").read_text().splitlines()),
    }
    if floor is not None:
        out["floor_library_check"] = floor
        out["p50_over_floor_p50"] = round(out["p50_ms"] / floor["p50_ms"], 1)
        out["p99_over_floor_p99"] = round(out["p99_ms"] / floor["p99_ms"], 1)
        out["throughput_over_floor"] = round(out["throughput_per_s"] / floor["throughput_per_s"], 2)
        out["server_cpu_over_floor_cpu"] = round(
            out["server_cpu_ms_per_check"] / floor["cpu_ms_per_check"], 1
        )
    out["uptime_before"] = uptime_before
    out["uptime_after"] = _uptime()
    print(json.dumps(out))


def library_floor(folder: Path, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The library's own check over the same proposals, in this process, one after the
    other (the service's floor): p50, p99, checks per second of one core."""

    from spillover.backends.memory import MemoryBackend
    from spillover.connect import read_dataset
    from spillover.engines.search import check
    from spillover.policy import default_policy

    graph = MemoryBackend(read_dataset(folder))
    policy = default_policy()
    times = []
    cpu = 0.0
    for b in bodies:
        c = time.process_time()
        t = time.perf_counter()
        check(graph, *check_args(b), policy)
        times.append(time.perf_counter() - t)
        if len(times) > len(bodies) // 10:
            cpu += time.process_time() - c
    times = sorted(times[len(times) // 10 :])  # the first tenth warms up
    return {
        "checks": len(times),
        "p50_ms": round(times[len(times) // 2] * 1e3, 3),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3, 3),
        "throughput_per_s": round(len(times) / sum(times), 1),
        "cpu_ms_per_check": round(cpu / len(times) * 1e3, 3),
    }


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants (the
    uvicorn workers)."""
    return sum(_tree_cpu_by_process(pid).values())


def _tree_cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds of process ``pid`` and of each live descendant."""
    return {p: u + s for p, (u, s) in _tree_cpu_parts(pid).items()}


def _tree_cpu_user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` and its live descendants."""
    parts = _tree_cpu_parts(pid).values()
    return sum(u for u, _ in parts), sum(s for _, s in parts)


def _tree_cpu_parts(pid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds of process ``pid`` and of each live descendant."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: dict[int, tuple[float, float]] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = (int(fields[11]) / tick, int(fields[12]) / tick)  # utime, stime
    return out


def _py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording the process ``pid`` and its workers, every thread, until SIGINT."""
    profiler = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--threads",
            "--rate",
            "500",
            "--format",
            "speedscope",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attached before the run starts
    return profiler


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


if __name__ == "__main__":
    main()
