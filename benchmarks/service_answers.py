#!/usr/bin/env python3
"""The same answers, before and after a change to ``spillover serve``: record what a
server answers to a fixed set of requests, raw, and compare two recordings.

``record`` starts the server (``python -m spillover serve``, with the PYTHONPATH given:
the code to record), sends the requests one at a time on raw sockets and keeps each
answer's status line, header lines and body as sent, then the check log. The answers'
``date`` and ``x-request-id`` headers, the ``check_id`` values and the check log's
``check_id`` and ``time`` are masked (they differ from run to run); everything else
must be the same, byte for byte. ``compare`` prints the differences (exit 1 if any).

The requests (on a folder from ``spillover synth``, and on the Jiang case with
``--jiang``): single checks of recorded entries with a non-ASCII stated reason, phone
checks written locally, two batches with 403/404/422 items, no token, a wrong token,
403, 404, a body over the limit (declared), bad bodies (422 of several kinds, a body
that is not JSON, another content type, no content type), the GET routes, /healthz and
/openapi.json, a HEAD request (an answer without a body) and a check sent with
``Expect: 100-continue`` (its interim answer recorded).

Usage::

    python benchmarks/service_answers.py record --data /tmp/s100k --pythonpath /work/main/src --out main.json
    python benchmarks/service_answers.py record --data /tmp/s100k --out mine.json --http httptools
    python benchmarks/service_answers.py record ... --cors-origin https://ops.example
    python benchmarks/service_answers.py record ... --workers 2
    python benchmarks/service_answers.py compare main.json mine.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOKEN = "answers-token-0123456789abcdef"
OTHER = "other-token-0123456789abcdef"
REASON = "手机号出现在违约贷款上 · número 📱"
MASKED_HEADERS = (b"date", b"x-request-id")
CHECK_ID = re.compile(rb'"check_id":"[0-9a-f]{32}"')
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def requests_for(folder: Path, n: int, seed: int) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path, headers, body) of every request, in order."""
    with open(folder / "blacklist.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(seed)
    sample = rng.sample(rows, min(n, len(rows)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    js = {**auth, "Content-Type": "application/json"}
    out: list[tuple[str, str, dict[str, str], bytes]] = []

    def post(path: str, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        out.append(("POST", path, js if headers is None else headers, raw))

    def check(r: dict[str, str], **extra: Any) -> dict[str, Any]:
        return {
            "platform_id": r["platform_id"],
            "subject": {"kind": r["subject_kind"], "id": r["subject"]},
            "listed_at": r["listed_at"],
            "stated_reason": REASON,
            **extra,
        }

    for r in sample:
        post("/v1/checks", check(r))
    phones = [r for r in rows if r["subject_kind"] == "phone"][:10]
    for r in phones:  # written locally: 139 5711 2345 for +8613957112345
        local = r["subject"].removeprefix("+86")
        post("/v1/checks", check({**r, "subject": f"{local[:3]} {local[3:7]} {local[7:]}"}))
    first = sample[0]
    post(
        "/v1/checks:batch",
        {
            "checks": [
                check(first),
                check(first, platform_id="no-such-platform"),
                {**check(first), "subject": {"kind": "person", "id": "nobody"}},
                {"platform_id": first["platform_id"]},
                {**check(first), "listed_at": "2024-02-30"},
            ]
        },
    )
    post("/v1/checks:batch", {"checks": [check(r) for r in sample[1:6]]})
    post("/v1/checks", check(first), {"Content-Type": "application/json"})  # 401
    post("/v1/checks", check(first), {"Authorization": "Bearer wrong-token-000000000000"})
    post("/v1/checks", check(first), {**js, "Authorization": f"Bearer {OTHER}"})  # 403
    post("/v1/checks", {**check(first), "subject": {"kind": "person", "id": "nobody"}})  # 404
    post("/v1/checks", b"{" + b" " * (2 * 1024 * 1024) + b"}")  # 413
    for bad in (
        {**check(first), "listed_at": "1800-01-01"},
        {**check(first), "subject": {"kind": "car", "id": "x"}},
        {**check(first), "subject": {"kind": "phone", "id": "12"}},
        {**check(first), "extra": 1},
        {"platform_id": first["platform_id"]},
        {**check(first), "stated_reason": 7},
    ):
        post("/v1/checks", bad)
    post("/v1/checks", b'{"platform_id": NaN}')
    post("/v1/checks", b"not json at all")
    post("/v1/checks", b"")
    post("/v1/checks", check(first), {**auth, "Content-Type": "text/plain"})
    post("/v1/checks", check(first), auth)  # no content type
    post("/v1/checks", check(first), {**js, "Content-Type": "application/json; charset=utf-8"})
    post("/v1/checks", check(first), {**js, "Origin": "https://elsewhere.example"})
    entries = [r["entry_id"] for r in sample[:3]]
    for entry in [*entries, "no-such-entry"]:
        out.append(("GET", f"/v1/entries/{entry}/explanation", auth, b""))
    out.append(("GET", f"/v1/subjects/person/{first['subject']}/entries", auth, b""))
    if phones:
        out.append(("GET", f"/v1/subjects/phone/{phones[0]['subject']}/entries", auth, b""))
    for path in ("/healthz", "/readyz", "/openapi.json", "/nowhere"):
        out.append(("GET", path, {}, b""))
    # an answer without a body; a check whose client waits for "100 Continue"
    out.append(("HEAD", "/healthz", {}, b""))
    post("/v1/checks", check(sample[1]), {**js, "Expect": "100-continue"})
    return out


def exchange(port: int, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One request on a new connection; the answer as sent: its head, and its body by
    its content-length (or up to the server's close). A body over 1 MiB is declared
    and not sent (the server answers 413 before reading it)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    request += body if len(body) <= 1024 * 1024 else b""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(request)
        length = None
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.removeprefix(CONTINUE).partition(b"\r\n\r\n")
            if sep and method == "HEAD":
                break  # the head only
            if sep and length is None:
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
            if length is not None and len(rest) >= length:
                break
    return data


def masked(answer: bytes) -> dict[str, Any]:
    interim = answer.startswith(CONTINUE)
    head, _, body = answer.removeprefix(CONTINUE).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    kept = [
        line.decode("latin-1")
        for line in lines[1:]
        if line.split(b":", 1)[0].strip().lower() not in MASKED_HEADERS
    ]
    body = CHECK_ID.sub(b'"check_id":"MASKED"', body)
    out = {"status_line": lines[0].decode("latin-1"), "headers": kept, "body": body.decode()}
    return {"interim": "100 Continue", **out} if interim else out


def record(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="service-answers-"))
    folder = args.data
    with open(folder / "platforms.csv", newline="", encoding="utf-8") as f:
        platforms = "+".join(sorted({r["platform_id"] for r in csv.DictReader(f)}))
    env = {
        **os.environ,
        "SPILLOVER_TOKENS": f"bench@{platforms}:{TOKEN},other:{OTHER}",
        "NEO4J_URI": "",
    }
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "spillover", "serve", "--port", str(port), "--data", str(folder)]
    cmd += ["--check-log", str(tmp / "checks.jsonl")]
    cmd += ["--cors-origin", args.cors_origin] if args.cors_origin else []
    if args.http:
        cmd += ["--http", args.http]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    server = subprocess.Popen(cmd, env=env, stderr=open(tmp / "server.log", "wb"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, (tmp / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the server never became ready"
            try:
                if b" 200 " in exchange(port, "GET", "/readyz", {}, b"").split(b"\r\n")[0]:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        answers = [
            {"request": f"{m} {p}", **masked(exchange(port, m, p, h, b))}
            for m, p, h, b in requests_for(folder, args.checks, args.seed)
        ]
    finally:
        server.terminate()
        server.wait(60)
    log = []
    for line in (tmp / "checks.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        log.append(json.dumps({**r, "check_id": "MASKED", "time": "MASKED"}, ensure_ascii=False))
    Path(args.out).write_text(
        json.dumps({"answers": answers, "check_log": log}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    print(f"{len(answers)} answers, {len(log)} check-log lines -> {args.out}")


def compare(args: argparse.Namespace) -> None:
    a = json.loads(Path(args.a).read_text(encoding="utf-8"))
    b = json.loads(Path(args.b).read_text(encoding="utf-8"))
    wrong = 0
    if len(a["answers"]) != len(b["answers"]):
        print(f"answers: {len(a['answers'])} != {len(b['answers'])}")
        wrong += 1
    for x, y in zip(a["answers"], b["answers"], strict=False):
        if x != y:
            wrong += 1
            print(f"differs: {x['request']}\n  {x}\n  {y}"[:3000])
    if a["check_log"] != b["check_log"]:
        wrong += 1
        print(f"check logs differ: {len(a['check_log'])} / {len(b['check_log'])} lines")
    statuses: dict[str, int] = {}
    for x in a["answers"]:
        code = x["status_line"].split(" ")[1]
        statuses[code] = statuses.get(code, 0) + 1
    print(
        f"{len(a['answers'])} answers {statuses}, {len(a['check_log'])} check-log lines: "
        + ("identical" if not wrong else f"{wrong} differences")
    )
    raise SystemExit(1 if wrong else 0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--data", type=Path, required=True)
    rec.add_argument("--out", required=True)
    rec.add_argument("--pythonpath", default=None, help="the code to record (PYTHONPATH)")
    rec.add_argument("--http", default=None, help="spillover serve --http (newer code only)")
    rec.add_argument("--cors-origin", default=None, help="spillover serve --cors-origin")
    rec.add_argument(
        "--workers",
        type=int,
        default=1,
        help="spillover serve --workers (each request on its own connection: with 2, the "
        "supervisor hands them to both workers once both serve)",
    )
    rec.add_argument("--checks", type=int, default=200)
    rec.add_argument("--seed", type=int, default=11)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    args = ap.parse_args()
    record(args) if args.command == "record" else compare(args)


if __name__ == "__main__":
    main()
