"""spillover serve over real HTTP on loopback: the server runs as a subprocess on a free
port, on the embedded backend and on Neo4j (the same answers on both)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from conftest import Neo4jService
from spillover import examples
from spillover.checklog import CheckLog, read_checks
from spillover.cli import cli
from spillover.connect import open_folder
from spillover.core import check, explain_about_person, explain_entry
from spillover.ingest import ingest_folder
from spillover.output import explanation_dict
from spillover.policy import default_policy
from spillover.rules import recommendation

pytest.importorskip("fastapi")

JIANG = examples.jiang_case_path()
TOKENS = {
    "quickcash": "qc-token-0123456789abcdef",
    "yidai": "yd-token-0123456789abcdef",
    # a broker's token, configured with the platforms it acts for
    "broker@quickcash+yidai+nowhere": "br-token-0123456789abcdef",
}
RIGHT = {"Authorization": f"Bearer {TOKENS['quickcash']}"}
BROKER = {"Authorization": f"Bearer {TOKENS['broker@quickcash+yidai+nowhere']}"}
WRONG = {"Authorization": "Bearer qc-token-0123456789abcdeX"}
CHECK = {
    "platform_id": "quickcash",
    "subject": {"kind": "person", "id": "jiang"},
    "listed_at": "2024-03-01",
    "stated_reason": "phone named on a defaulted loan",
}
MAX_BODY = 4096
MAX_BATCH = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    check_log: Path
    lines: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        return code

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]


def start_server(args: list[str], env: dict[str, str], tmp: Path) -> Server:
    port = free_port()
    check_log = tmp / "checks.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "spillover",
        "serve",
        "--port",
        str(port),
        "--check-log",
        str(check_log),
        "--max-body-bytes",
        str(MAX_BODY),
        "--max-batch",
        str(MAX_BATCH),
        "--graceful-seconds",
        "5",
        *args,
    ]
    full_env = {
        **os.environ,
        **env,
        "SPILLOVER_TOKENS": ",".join(f"{k}:{v}" for k, v in TOKENS.items()),
    }
    process = subprocess.Popen(cmd, env=full_env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    server = Server(f"http://127.0.0.1:{port}", process, check_log)
    assert process.stderr is not None
    stderr = process.stderr

    def pump() -> None:
        for raw in stderr:
            server.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            time.sleep(0.2)
            raise AssertionError("server exited:\n" + "\n".join(server.lines))
        try:
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("server did not become ready:\n" + "\n".join(server.lines))


def _neo4j_env(service: Neo4jService, uri: str | None = None) -> dict[str, str]:
    s = service.settings
    return {
        "NEO4J_URI": uri or s.uri,
        "NEO4J_USER": s.user,
        "NEO4J_PASSWORD": s.password,
        "NEO4J_DATABASE": s.database,
    }


@pytest.fixture(
    scope="module",
    params=["memory", "arrays", pytest.param("neo4j", marks=pytest.mark.neo4j)],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per backend for the module (starting one per test costs seconds); on
    Neo4j the Jiang case is ingested first and wiped at the end."""
    tmp = tmp_path_factory.mktemp(request.param)
    service: Neo4jService | None = None
    if request.param == "neo4j":
        service = request.getfixturevalue("neo4j_service")
        ingest_folder(JIANG, service.driver, service.settings.database)
        srv = start_server([], _neo4j_env(service), tmp)
    else:
        srv = start_server(
            ["--data", str(JIANG), "--embedded", request.param], {"NEO4J_URI": ""}, tmp
        )
    try:
        yield srv
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
            srv.process.wait()
        if service is not None:
            service.clear()


def library_check(**kw: Any) -> dict[str, Any]:
    e = check(open_folder(JIANG), **kw)
    return {
        **explanation_dict(e),
        "recommendation": recommendation(e.contamination, default_policy()).value,
    }


ROUTES = [
    ("POST", "/v1/checks", CHECK),
    ("POST", "/v1/checks:batch", {"checks": [CHECK]}),
    ("GET", "/v1/entries/E-QT-J/explanation", None),
    ("GET", "/v1/subjects/person/jiang/entries", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_v1_route_needs_the_right_token(
    server: Server, method: str, path: str, body: Any
) -> None:
    with server.client() as c:
        none = c.request(method, path, json=body)
        wrong = c.request(method, path, json=body, headers=WRONG)
        right = c.request(method, path, json=body, headers=RIGHT)
    for r in (none, wrong):
        assert r.status_code == 401
        assert r.json() == {"detail": "unauthorized"}
        assert r.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200, right.text


def test_health_and_readiness_need_no_token(server: Server) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok", "backend": None}
        ready = c.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


def test_check_answers_the_explanation_a_recommendation_and_a_check_id(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/checks", json=CHECK, headers=RIGHT)
    assert r.status_code == 200
    got = r.json()
    check_id = got.pop("check_id")
    assert len(check_id) == 32
    want = library_check(
        platform_id="quickcash", subject_kind="person", subject="jiang", at=_day("2024-03-01")
    )
    assert got == want
    assert got["verdict"] == "spillover"
    assert got["recommendation"] == "do_not_list"


def test_check_of_a_phone_written_locally(server: Server) -> None:
    body = {**CHECK, "subject": {"kind": "phone", "id": "139 5711 2345"}}
    with server.client() as c:
        r = c.post("/v1/checks", json=body, headers=RIGHT)
    assert r.status_code == 200
    got = r.json()
    got.pop("check_id")
    assert got["subject"] == {"kind": "phone", "id": "+8613957112345"}
    assert got == library_check(
        platform_id="quickcash",
        subject_kind="phone",
        subject="+8613957112345",
        at=_day("2024-03-01"),
    )


def test_unknown_person_or_platform_is_404(server: Server) -> None:
    with server.client() as c:
        person = c.post(
            "/v1/checks",
            json={**CHECK, "subject": {"kind": "person", "id": "nobody"}},
            headers=RIGHT,
        )
        platform = c.post("/v1/checks", json={**CHECK, "platform_id": "nowhere"}, headers=BROKER)
        entry = c.get("/v1/entries/E-NONE/explanation", headers=RIGHT)
        subject = c.get("/v1/subjects/phone/13800000000/entries", headers=RIGHT)
    assert person.status_code == platform.status_code == entry.status_code == 404
    assert subject.status_code == 404
    assert "nobody" in person.json()["detail"]
    assert "nowhere" in platform.json()["detail"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"subject": {"kind": "person", "id": "jiang"}}, ["body", "platform_id"]),
        ({**CHECK, "subject": {"kind": "loan", "id": "x"}}, ["body", "subject", "kind"]),
        ({**CHECK, "subject": {"kind": "phone", "id": "12"}}, ["body", "subject", "id"]),
        ({**CHECK, "listed_at": "2024-02-30"}, ["body", "listed_at"]),
        ({**CHECK, "listed_at": "0001-01-01"}, ["body", "listed_at"]),
        ({**CHECK, "extra": 1}, ["body", "extra"]),
    ],
)
def test_bad_bodies_get_422_naming_the_field(
    server: Server, body: dict[str, Any], where: list[str]
) -> None:
    with server.client() as c:
        r = c.post("/v1/checks", json=body, headers=RIGHT)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [where]


def test_body_over_the_limit_is_413_declared_or_streamed(server: Server) -> None:
    big = {**CHECK, "stated_reason": "x" * MAX_BODY}

    def chunks() -> Iterator[bytes]:
        data = json.dumps(big).encode()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    with server.client() as c:
        declared = c.post("/v1/checks", json=big, headers=RIGHT)
        streamed = c.post(
            "/v1/checks",
            content=chunks(),
            headers={**RIGHT, "Content-Type": "application/json"},
        )
        unauthenticated = c.post("/v1/checks", json=big)
    assert declared.status_code == streamed.status_code == 413
    assert declared.json() == {"detail": f"request body over {MAX_BODY} bytes"}
    # the token comes first: without one, the size of the body is not looked at
    assert unauthenticated.status_code == 401


def test_batch_answers_in_order_with_one_error_per_bad_item(server: Server) -> None:
    items = [
        CHECK,
        {**CHECK, "subject": {"kind": "person", "id": "nobody"}},
        {"platform_id": "quickcash"},
        {**CHECK, "subject": {"kind": "phone", "id": "13957112345"}},
    ]
    with server.client() as c:
        r = c.post("/v1/checks:batch", json={"checks": items}, headers=RIGHT)
        too_many = c.post(
            "/v1/checks:batch", json={"checks": [CHECK] * (MAX_BATCH + 1)}, headers=RIGHT
        )
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["index"] for x in results] == [0, 1, 2, 3]
    assert results[0]["check"]["recommendation"] == "do_not_list"
    assert results[0]["error"] is None
    assert results[1]["error"]["status"] == 404
    assert results[2]["error"]["status"] == 422
    assert [e["loc"] for e in results[2]["error"]["detail"]] == [["subject"]]
    assert results[3]["check"]["subject"]["id"] == "+8613957112345"
    assert too_many.status_code == 422


def test_entry_explanation_is_the_library_s(server: Server) -> None:
    with server.client() as c:
        r = c.get("/v1/entries/E-QT-J/explanation", headers=RIGHT)
    assert r.status_code == 200
    assert r.json() == explanation_dict(explain_entry(open_folder(JIANG), "E-QT-J"))


def test_subject_entries_for_a_person_and_a_phone(server: Server) -> None:
    backend = open_folder(JIANG)
    with server.client() as c:
        person = c.get("/v1/subjects/person/jiang/entries", headers=RIGHT)
        phone = c.get("/v1/subjects/phone/13957112345/entries", headers=RIGHT)
        bad_kind = c.get("/v1/subjects/loan/x/entries", headers=RIGHT)
    assert person.json() == [explanation_dict(e) for e in explain_about_person(backend, "jiang")]
    ids = {e["entry_id"] for e in phone.json()}
    assert ids and all(e["subject"]["id"] == "+8613957112345" for e in phone.json())
    assert ids <= {e["entry_id"] for e in person.json()}
    assert bad_kind.status_code == 422


def test_openapi_document_shows_the_jiang_case(server: Server) -> None:
    with server.client() as c:
        doc = c.get("/openapi.json").json()
    post = doc["paths"]["/v1/checks"]["post"]
    example = post["responses"]["200"]["content"]["application/json"]["example"]
    assert example["subject"] == {"kind": "person", "id": "jiang"}
    assert example["recommendation"] == "do_not_list"
    assert {"/v1/checks:batch", "/healthz", "/readyz"} <= set(doc["paths"])


def test_every_check_is_recorded_and_read_back(server: Server, tmp_path: Path) -> None:
    other = {"Authorization": f"Bearer {TOKENS['yidai']}"}
    with server.client() as c:
        a = c.post("/v1/checks", json=CHECK, headers=RIGHT).json()
        b = c.post(
            "/v1/checks",
            json={
                **CHECK,
                "platform_id": "yidai",
                "subject": {"kind": "phone", "id": "13957112345"},
            },
            headers=other,
        ).json()
    records = {r["check_id"]: r for r in read_checks(server.check_log)}
    ra, rb = records[a["check_id"]], records[b["check_id"]]
    assert ra["token_name"] == "quickcash" and rb["token_name"] == "yidai"
    assert ra["subject"] == {"kind": "person", "id": "jiang"}
    assert ra["platform_id"] == "quickcash"
    assert ra["result"]["recommendation"] == a["recommendation"]
    assert ra["result"]["contamination"] == a["contamination"]
    assert ra["policy"]["digest"] == default_policy().digest
    assert rb["subject"] == {"kind": "phone", "id": "+8613957112345"}
    out = CliRunner().invoke(cli, ["checks", "--log", str(server.check_log), "--subject", "jiang"])
    assert out.exit_code == 0, out.output
    read = [json.loads(line) for line in out.output.splitlines()]
    assert a["check_id"] in {r["check_id"] for r in read}
    # a person's checks include those made on the phone they owned on the listing day
    assert b["check_id"] in {r["check_id"] for r in read}
    assert rb["phone_owner_id"] == "jiang"
    assert "phone_owner_id" not in ra
    assert all(
        r["subject"]["id"] == "jiang" or r.get("phone_owner_id") == "jiang" for r in read
    )
    phone = CliRunner().invoke(
        cli, ["checks", "--log", str(server.check_log), "--subject", "139 5711 2345"]
    )
    assert b["check_id"] in phone.output and a["check_id"] not in phone.output


def test_request_log_is_json_lines_without_names_phones_or_ids(server: Server) -> None:
    with server.client() as c:
        c.get("/v1/subjects/phone/13957112345/entries", headers=RIGHT)
        r = c.post("/v1/checks", json=CHECK, headers=RIGHT)
    request_id = r.headers["x-request-id"]
    time.sleep(0.3)
    record = next(x for x in server.log() if x.get("request_id") == request_id)
    assert record["token_name"] == "quickcash"
    assert record["route"] == "/v1/checks"
    assert record["status"] == 200
    assert record["latency_ms"] > 0
    text = "\n".join(server.lines)
    assert "13957112345" not in text
    assert "Jiang" not in text and "bakery" not in text
    assert [line for line in server.lines if line.strip() and not line.startswith("{")] == []


def test_check_log_rotates_and_reads_back_oldest_first(tmp_path: Path) -> None:
    log = CheckLog(tmp_path / "checks.jsonl", max_bytes=300, backups=50)
    for i in range(40):
        log.append({"check_id": str(i), "subject": {"kind": "person", "id": f"p{i % 2}"}})
    assert (tmp_path / "checks.jsonl.1").exists()
    assert [r["check_id"] for r in read_checks(log.path)] == [str(i) for i in range(40)]
    assert [r["check_id"] for r in read_checks(log.path, "p1")] == [str(i) for i in range(1, 40, 2)]


def test_serve_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SPILLOVER_TOKENS"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spillover",
            "serve",
            "--data",
            str(JIANG),
            "--check-log",
            str(tmp_path / "c"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no bearer tokens" in done.stderr


class Proxy:
    """A TCP forwarder on loopback that can be cut (connections refused), to make Neo4j
    unreachable for the server behind it, and opened again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.resume()

    def resume(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            a.close()
            b.close()

    def cut(self) -> None:
        if self.listener is None:
            return
        # shutdown first: close() alone leaves a socket that a thread waits on listening
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.listener = None
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.conns = []


@pytest.mark.neo4j
def test_readyz_fails_while_neo4j_is_unreachable(neo4j_env: Neo4jService, tmp_path: Path) -> None:
    host, _, port = neo4j_env.settings.uri.removeprefix("bolt://").rpartition(":")
    proxy = Proxy((host, int(port)))
    srv = start_server([], _neo4j_env(neo4j_env, f"bolt://127.0.0.1:{proxy.port}"), tmp_path)
    try:
        with srv.client() as c:
            assert c.get("/readyz").status_code == 200
            proxy.cut()
            down = c.get("/readyz")
            assert c.get("/healthz").status_code == 200
            proxy.resume()
            deadline = time.monotonic() + 30
            while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            back = c.get("/readyz")
    finally:
        srv.process.kill()
        srv.process.wait()
        proxy.cut()
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "backend": "neo4j"}
    assert back.status_code == 200


def test_sigterm_stops_cleanly_and_closes_the_graph(tmp_path: Path) -> None:
    srv = start_server(["--data", str(JIANG)], {"NEO4J_URI": ""}, tmp_path)
    with srv.client() as c:
        assert c.post("/v1/checks", json=CHECK, headers=RIGHT).status_code == 200
    # uvicorn answers what is in flight, runs the shutdown (the graph is closed), then
    # re-raises the signal
    assert srv.stop() in (0, -signal.SIGTERM)
    time.sleep(0.3)
    assert any(x.get("event") == "stop" for x in srv.log())


def _day(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


# ---------------------------------------------------------------------------
# schemathesis: generated requests against the served OpenAPI document
# ---------------------------------------------------------------------------


def test_generated_requests_get_no_server_error_and_match_the_schema(server: Server) -> None:
    """schemathesis generates requests from the served document: 30 per operation,
    with a valid token; no answer may be a 5xx or break the document's schema."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                base_url=server.url,
                headers=RIGHT,
                checks=[not_a_server_error, response_schema_conformance],
            )

        call()


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    """A batch that is still being answered when SIGTERM arrives is answered in full."""
    many = 2500
    srv = start_server(
        [
            "--data",
            str(JIANG),
            "--max-batch",
            str(many),
            "--max-body-bytes",
            str(10**7),
            "--graceful-seconds",
            "120",  # longer than the batch takes (past it, uvicorn drops the connection)
        ],
        {"NEO4J_URI": ""},
        tmp_path,
    )
    answer: dict[str, Any] = {}

    def post() -> None:
        # a loaded machine may take longer than the usual client timeout to answer 2500
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            r = c.post("/v1/checks:batch", json={"checks": [CHECK] * many}, headers=RIGHT)
        answer["at"] = time.monotonic()
        answer["response"] = r

    try:
        sender = threading.Thread(target=post)
        sender.start()
        # the batch is being answered once its first check is in the check log (each
        # answered check is appended as it is answered; 2500 take seconds)
        deadline = time.monotonic() + 120
        while not (srv.check_log.exists() and srv.check_log.stat().st_size > 0):
            assert time.monotonic() < deadline, "the batch was never answered"
            assert sender.is_alive(), "the batch ended before it was answered"
            time.sleep(0.02)
        signalled = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        sender.join(timeout=120)
        code = srv.process.wait(timeout=60)
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
    r = answer["response"]
    # the answer came after the signal: the request was in flight, and it was finished
    assert answer["at"] > signalled
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == many and all(x["error"] is None for x in results)
    assert code in (0, -signal.SIGTERM)
