"""Tests that need a Neo4j server of their own: a fresh one (no driver noise on a database
that has never seen a property), and one killed mid-ingest and restarted on the same data.

Each test starts its own server with ``scripts/neo4j-local`` (Java 17 or 21 needed; the
jars are cached in ~/.cache/spillover) and stops it afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner

import spillover.neo4j
from spillover.cli import cli
from spillover.examples import jiang_case_path
from spillover.neo4j.ingest import graph_counts, held_rows, ingest_folder, read_marker, wipe
from spillover.neo4j.saved import list_saved_queries
from spillover.neo4j.statements import cypher
from spillover.neo4j.store import COLUMN_READS, MISSING_DAY, ROLE_PARAMS, Neo4jSettings, connect
from spillover.synth.generate import generate

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "neo4j-local"


@dataclass
class Server:
    state: Path
    info: dict[str, Any]

    @property
    def settings(self) -> Neo4jSettings:
        return Neo4jSettings(self.info["uri"], self.info["user"], self.info["password"])

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NEO4J_URI": self.info["uri"],
            "NEO4J_USER": self.info["user"],
            "NEO4J_PASSWORD": self.info["password"],
            "NEO4J_DATABASE": "neo4j",
        }

    def start(self) -> None:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "start", "--state-dir", str(self.state)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/neo4j-local could not start Neo4j:\n{done.stderr[-3000:]}")
        self.info = json.loads(done.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", "--state-dir", str(self.state)],
            capture_output=True,
            timeout=120,
        )


@pytest.fixture
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A new, empty Neo4j server for this test alone."""
    server = Server(tmp_path_factory.mktemp("neo4j-own") / "state", {})
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: every read statement with parameters that make it touch every label and property
READS: dict[str, dict[str, Any]] = {
    "entries_by_id": {"ids": ["E-QT-J"]},
    "entries_page": {"after": "", "limit": 100},
    "sharing": {},
    "names": {"people": ["jiang"], "platforms": ["quickcash"], "records": ["TY-R-XU"]},
    "exists": {"kind": "phone", "id": "+8613957112345"},
    "neighbourhood": {
        "persons": ["jiang"],
        "phones": ["+8613957112345"],
        "platforms": ["xinyi"],
        "epoch": date(1970, 1, 1),
        **ROLE_PARAMS,
    },
    "expand": {
        "persons": ["jiang"],
        "phones": ["+8613957112345"],
        "until": "2030-01-01",
        **ROLE_PARAMS,
    },
    "surroundings": {
        "loans": ["XY-AX-1"],
        "subjects": [{"kind": "person", "id": "jiang"}],
        **ROLE_PARAMS,
    },
    "counts": {},
    "element_counts": {},
    "label_counts": {},
    "dataset_get": {},
    "sync_platforms": {"after": "", "limit": 100},
    "sync_people": {"after": "", "limit": 100},
    "sync_phones": {"after": "", "limit": 100},
    "sync_loans": {"after": "", "limit": 100},
    "sync_entries": {"after": "", "limit": 100},
    "sync_sharing": {},
    "sync_records": {"after": "", "limit": 100},
    "export_records": {"after": "", "limit": 100},
    **{name: {"epoch": date(1970, 1, 1), "missing": MISSING_DAY} for name in COLUMN_READS},
    # the write-back's read of every entry's results, before any write-back ran (no
    # TRACED_TO, no result property) and where no ingest ever kept a stale_* answer
    "writeback_traces": {},
    "matches": {"ids": ["TY-R-XU"]},
    "record_platforms": {"ids": ["TY-R-XU"]},
    "matched_records": {"persons": ["jiang"]},
}


def test_no_driver_noise_on_a_fresh_server(own_server, tmp_path):
    """On a database where no phone period ever had an end date (the Jiang case), no query
    raises a notification, and the commands write nothing to stderr."""
    s = own_server.settings
    runner = CliRunner()
    neo4j_args = ["--neo4j-uri", s.uri, "--neo4j-password", s.password]
    demo = runner.invoke(cli, ["demo", *neo4j_args])
    assert demo.exit_code == 0, demo.output
    assert demo.stderr == ""
    assert "Jiang (bakery owner)" in demo.stdout
    for args in (
        ["explain", "E-QT-J"],
        ["explain", "E-LH-LN", "--format", "json"],
        ["check", "--platform", "westlake_bank", "--subject", "jiang", "--at", "2024-05-01"],
        ["audit", "--out", str(tmp_path / "audit.csv")],
    ):
        result = runner.invoke(cli, [*args, *neo4j_args])
        assert result.exit_code == 0, result.output
        assert result.stderr == "", args
    ingested = runner.invoke(cli, ["ingest", str(jiang_case_path()), *neo4j_args])
    assert ingested.exit_code == 0 and ingested.stderr == ""

    # at the source: not one notification from any read statement (asked of a plain
    # driver: spillover's own, connect(), asks the server to send no "does not exist")
    driver = neo4j.GraphDatabase.driver(s.uri, auth=(s.user, s.password))
    ours = connect(s)
    try:
        # before any write-back there is no TRACED_TO: the read of the stored results
        # (stored_results) names it, and a library caller's driver was told so, with the
        # whole query in a warning; connect()'s is not (the plain driver is, the control)
        assert _notifications(driver, cypher("writeback_state"), {})
        assert _notifications(ours, cypher("writeback_state"), {}) == []
        assert "until" not in json.dumps(
            [r["props"] for r in driver.execute_query(cypher("sync_phones"), after="", limit=9)[0]]
        )
        for name, params in READS.items():
            assert _notifications(driver, cypher(name), params) == [], name
        # the control: reading the property directly is what raised the notices
        assert _notifications(driver, "MATCH ()-[r:OWNS]->() RETURN r.until AS until", {})

        # the saved queries as a user pastes them, over the write-back's results (a
        # database without platform records: no loan ever had a borrower_record)
        written = runner.invoke(cli, ["audit", "--write-back", *neo4j_args])
        assert written.exit_code == 0 and written.stderr == "", written.output
        for query in list_saved_queries():
            bound = query.bind(SAVED_PARAMS.get(query.name, {}))
            assert _notifications(driver, query.text, bound) == [], query.name
        # and no statement of the package, reads or writes, planned alone after a write-back
        # (no ingest kept a stale_* answer here; EXPLAIN with no parameter given, so
        # "parameter missing" is all it may say)
        for name in _statement_names():
            assert _planned_notes(driver, cypher(name)) == [], name
    finally:
        driver.close()
        ours.close()


#: the saved queries' parameters that have no default, for the Jiang case
SAVED_PARAMS: dict[str, dict[str, Any]] = {
    "trace_entry": {"entry_id": "E-WL-J"},
    "spread_from": {"from": "xu_yan"},
}


def _statement_names() -> list[str]:
    """Every packaged Cypher statement by its :func:`cypher` name, but the schema's (several
    statements in one file)."""
    root = Path(spillover.neo4j.__file__).parent / "cypher"
    return sorted(
        str(f.relative_to(root).with_suffix(""))
        for f in root.rglob("*.cypher")
        if f.name != "schema.cypher"
    )


#: the notification EXPLAIN without parameters always raises: as a GQL status (drivers from
#: 5.22) and as the older notification code (the range allows 5.20)
_NO_PARAMETERS = ("01N60", "Neo.ClientNotification.Statement.ParameterNotProvided")


def _planned_notes(driver: neo4j.Driver, query: str) -> list[str]:
    """The notifications of ``EXPLAIN query`` (no parameter given) but "parameter missing"."""
    _, summary, _ = driver.execute_query("EXPLAIN " + query)
    gql = getattr(summary, "gql_status_objects", None)
    if gql is None:
        return [
            str(n.get("description", n))
            for n in (summary.notifications or [])
            if n.get("code") not in _NO_PARAMETERS
        ]
    return [
        g.status_description
        for g in gql
        if g.is_notification and g.gql_status not in _NO_PARAMETERS
    ]


def _notifications(driver: neo4j.Driver, query: str, params: dict[str, Any]) -> list[str]:
    _, summary, _ = driver.execute_query(query, params)
    gql = getattr(summary, "gql_status_objects", None)
    if gql is None:  # drivers before 5.22 (the range allows 5.20) have notifications only
        return [str(n.get("description", n)) for n in (summary.notifications or [])]
    return [g.status_description for g in gql if g.is_notification]


def _loans(driver: neo4j.Driver) -> int:
    try:
        records, _, _ = driver.execute_query("MATCH (l:Loan) RETURN count(l) AS n")
    except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError):
        return 0
    return int(records[0]["n"])


def test_a_server_killed_mid_ingest_then_restarted_gets_the_graph_of_a_clean_ingest(
    own_server, tmp_path
):
    folder = tmp_path / "synth"
    generate(1500, 11, folder)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "spillover", "ingest", str(folder), "--batch-size", "150"],
        env=own_server.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = connect(own_server.settings)
    try:
        deadline = time.monotonic() + 300
        while _loans(watcher) < 300 and ingest.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.close()
    assert ingest.poll() is None, "the ingest ended before the server could be killed"
    os.kill(own_server.info["pid"], signal.SIGKILL)
    killed = time.monotonic()
    out, err = ingest.communicate(timeout=300)
    took = time.monotonic() - killed

    assert ingest.returncode == 1, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("spillover: ") for line in lines), err
    errors = [line for line in lines if line.startswith("spillover: error: ")]
    assert errors == [lines[-1]], err
    assert "lost Neo4j during the ingest" in lines[-1] and "run the same ingest again" in lines[-1]
    assert took < 40, f"the ingest took {took:.0f} s to give up"

    own_server.start()  # the same state dir: the data written before the kill
    driver = connect(own_server.settings)
    try:
        db = own_server.settings.database
        marker = read_marker(driver, db)
        assert marker.name == "synth" and marker.props and marker.props["complete"] is False
        resumed = ingest_folder(folder, driver, db)
        assert sum(c.added for c in resumed.changes.values()) > 0
        assert read_marker(driver, db).props["complete"] is True  # type: ignore[index]
        assert ingest_folder(folder, driver, db).unchanged
        after = graph_counts(driver, db), held_rows(driver, db)
        wipe(driver, db)
        ingest_folder(folder, driver, db)
        assert after == (graph_counts(driver, db), held_rows(driver, db))
    finally:
        driver.close()


def test_a_non_bolt_uri_is_one_clean_line():
    runner = CliRunner()
    for uri in ("http://127.0.0.1:7474", "https://example.org", "localhost:7687", "ftp://x"):
        result = runner.invoke(cli, ["explain", "E1", "--neo4j-uri", uri])
        assert result.exit_code == 1, uri
        assert result.stderr.startswith(f"spillover: error: bad Neo4j URI '{uri}'"), uri
        assert "bolt://" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        ingest = runner.invoke(cli, ["ingest", str(jiang_case_path()), "--neo4j-uri", uri])
        assert ingest.exit_code == 1 and "bad Neo4j URI" in ingest.stderr


def test_driver_warnings_become_one_line_each():
    """A retry (the driver logs the whole deadlock report) is one line; notifications go."""
    import logging

    from spillover.neo4j.driverlog import route_driver_logs

    lines: list[str] = []
    route_driver_logs(lines.append)
    try:
        dump = "{neo4j_code: Neo.TransientError.Transaction.DeadlockDetected} {message: a\n b\n c}"
        logging.getLogger("neo4j.session").warning(
            "Transaction failed and will be retried in %ss (%s)", 0.8801, dump
        )
        logging.getLogger("neo4j.notifications").warning("Received notification: %s", "x\ny")
        logging.getLogger("neo4j.io").error("Failed to read\nfrom defunct connection")
    finally:
        logging.getLogger("neo4j").handlers.clear()
        logging.getLogger("neo4j").propagate = True
    assert lines == [
        f"Neo4j transaction retried in 0.9s ({' '.join(dump.split())})",
        "Neo4j driver: Failed to read from defunct connection",
    ]
