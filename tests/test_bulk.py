"""``spillover ingest --bulk``: the offline importer's files, and the graph they load.

The bulk load replaces a database's store, which needs the server stopped: these
tests run a Neo4j server of their own (``scripts/neo4j-local``, state in a temporary
dir, stopped and removed at the end), never the shared session server of conftest.py.
The graph a bulk load leaves is compared, node by node and relationship by
relationship (labels, every property with its type, types, endpoints), with the
graph a MERGE ingest of the same folder writes into an empty database.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner

from spillover.audit.batch import audit
from spillover.backends.memory import MemoryBackend
from spillover.cli import cli
from spillover.data.exact import load_folder
from spillover.data.fast import read_dataset
from spillover.engines.search import explain_all
from spillover.examples import jiang_case_path, jiang_records_path
from spillover.neo4j.bulk import (
    DatabaseNotEmpty,
    ImportFailed,
    bulk_ingest,
    run_import,
    write_import_files,
)
from spillover.neo4j.ingest import graph_counts, ingest_folder, read_marker, wipe
from spillover.neo4j.store import Neo4jBackend, Neo4jSettings, connect
from spillover.synth.generate import generate

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "neo4j-local"


@dataclass
class BulkServer:
    state: Path
    settings: Neo4jSettings

    @property
    def admin(self) -> list[str]:
        """The neo4j-admin command for this server: stops it around the import."""
        return [sys.executable, str(SCRIPT), "admin", "--state-dir", str(self.state), "--"]

    def driver(self) -> neo4j.Driver:
        return connect(self.settings)

    def clear(self) -> None:
        with self.driver() as driver:
            wipe(driver, self.settings.database)


@pytest.fixture(scope="module")
def bulk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BulkServer]:
    """A Neo4j server of this module alone (bulk loads stop and restart it)."""
    state = tmp_path_factory.mktemp("neo4j-bulk") / "state"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "start", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/neo4j-local could not start Neo4j:\n{done.stderr[-3000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    server = BulkServer(state, Neo4jSettings(info["uri"], info["user"], info["password"]))
    try:
        yield server
    finally:
        subprocess.run(
            [sys.executable, str(SCRIPT), "stop", "--state-dir", str(state)],
            capture_output=True,
            timeout=120,
        )


@pytest.fixture
def bulk_db(bulk_server: BulkServer) -> Iterator[BulkServer]:
    """The module's server, empty before and after the test."""
    bulk_server.clear()
    yield bulk_server
    bulk_server.clear()


def _typed(props: dict[str, Any]) -> tuple[tuple[str, str, Any], ...]:
    """Properties with the type each value is stored as (Date, bool, float, int, str)."""
    return tuple(sorted((k, type(v).__name__, v) for k, v in props.items()))


def _key(labels: list[str], props: dict[str, Any]) -> tuple[str, ...]:
    return (*sorted(labels), str(props.get("id", props.get("number", props.get("key")))))


def dump(server: BulkServer) -> tuple[dict[tuple[str, ...], Any], Counter[Any]]:
    """Every node (by labels and key: its typed properties) and every relationship
    (type, start, end, typed properties, with multiplicity); the dataset marker left out."""
    with server.driver() as driver:
        nodes_rec, _, _ = driver.execute_query(
            "MATCH (n) WHERE NOT n:Dataset RETURN labels(n) AS labels, properties(n) AS props",
            database_=server.settings.database,
        )
        rels_rec, _, _ = driver.execute_query(
            "MATCH (a)-[r]->(b) RETURN type(r) AS type, labels(a) AS al, properties(a) AS ap, "
            "labels(b) AS bl, properties(b) AS bp, properties(r) AS props",
            database_=server.settings.database,
        )
    nodes: dict[tuple[str, ...], Any] = {}
    for r in nodes_rec:
        key = _key(r["labels"], r["props"])
        assert key not in nodes, f"two nodes {key}"
        nodes[key] = _typed(r["props"])
    rels = Counter(
        (r["type"], _key(r["al"], r["ap"]), _key(r["bl"], r["bp"]), _typed(r["props"]))
        for r in rels_rec
    )
    return nodes, rels


def schema(server: BulkServer) -> set[tuple[Any, ...]]:
    with server.driver() as driver:
        records, _, _ = driver.execute_query(
            "SHOW INDEXES YIELD name, type, labelsOrTypes, properties, state "
            "RETURN name, type, labelsOrTypes, properties, state",
            database_=server.settings.database,
        )
    return {
        (
            r["name"],
            r["type"],
            tuple(r["labelsOrTypes"] or ()),
            tuple(r["properties"] or ()),
            r["state"],
        )
        for r in records
    }


def behaviour(server: BulkServer, tmp_path: Path, name: str) -> tuple[list[Any], str]:
    """Every explanation and the audit file the Neo4j backend gives."""
    with server.driver() as driver:
        graph = Neo4jBackend(driver, server.settings.database)
        explained = list(explain_all(graph))
        audit(graph, tmp_path / f"{name}.csv")
    return explained, (tmp_path / f"{name}.csv").read_text()


def merge_loaded(server: BulkServer, folder: Path) -> None:
    with server.driver() as driver:
        wipe(driver, server.settings.database)
        ingest_folder(folder, driver, server.settings.database)


def assert_same_as_merge(server: BulkServer, folder: Path, tmp_path: Path) -> None:
    """The bulk-loaded graph (now in the server) equals a MERGE ingest of ``folder``,
    and so do its schema, its marker and the explanations and audit rows read from it."""
    bulk_graph = dump(server)
    bulk_schema = schema(server)
    bulk_behaviour = behaviour(server, tmp_path, "bulk")
    with server.driver() as driver:
        bulk_marker = read_marker(driver, server.settings.database)
        bulk_counts = graph_counts(driver, server.settings.database)

    merge_loaded(server, folder)
    merge_graph = dump(server)
    nodes, rels = bulk_graph
    assert nodes.keys() == merge_graph[0].keys()
    for key, props in merge_graph[0].items():
        assert nodes[key] == props, key
    assert rels == merge_graph[1]
    assert bulk_schema == schema(server)
    with server.driver() as driver:
        merge_marker = read_marker(driver, server.settings.database)
        assert bulk_counts == graph_counts(driver, server.settings.database)
    assert merge_marker.props is not None and bulk_marker.props is not None
    for prop in ("name", "folder", "complete", "rows", "data_version"):
        assert bulk_marker.props[prop] == merge_marker.props[prop], prop
    assert set(bulk_marker.props) == set(merge_marker.props)

    merge_behaviour = behaviour(server, tmp_path, "merge")
    assert bulk_behaviour == merge_behaviour
    expected = list(explain_all(MemoryBackend(load_folder(folder))))
    assert bulk_behaviour[0] == expected


def with_gaps(tmp_path: Path) -> Path:
    """The Jiang case with the values a file format can lose: an open period (its key
    the empty string), missing optional values, quotes and commas in text, a fraction."""
    from test_ingest_sync import edit, setting

    folder = tmp_path / "gaps"
    shutil.copytree(jiang_case_path(), folder)
    edit(folder, "phones", setting({"phone": "13600550077"}, since="", until="2025-12-31"))
    edit(folder, "loans", setting({"loan_id": "XY-QC-1"}, amount="", phone_verified=""))
    edit(folder, "loans", setting({"loan_id": "XY-YD-1"}, amount="2000.5"))
    edit(folder, "sharing", setting({"from_platform": "yidai"}, since=""))
    edit(folder, "people", setting({"person_id": "xu_yan"}, name='Xu "Yan", Jr.', city=" "))
    return folder


def records_population(tmp_path: Path) -> Path:
    """A synthetic population with platform records, matches and loans naming a record."""
    folder = tmp_path / "records"
    generate(400, 11, folder, records=True)
    return folder


CASES = {
    "jiang": lambda tmp_path: jiang_case_path(),
    "gaps": with_gaps,
    "jiang_records": lambda tmp_path: jiang_records_path(),
    "synth_records": records_population,
}


@pytest.mark.neo4j
@pytest.mark.parametrize("case", list(CASES))
def test_bulk_load_is_the_merge_ingest_graph(bulk_db, tmp_path, case):
    folder = CASES[case](tmp_path)
    seen: list[tuple[str, int, int]] = []
    summary = bulk_ingest(
        folder,
        bulk_db.settings,
        admin=bulk_db.admin,
        files=tmp_path / "files",
        progress=lambda *step: seen.append(step),
    )
    assert summary.imported and summary.replaced == 0
    stages = [stage for stage, _, _ in seen]
    # the importer's own stages are reported as they come, in order
    assert stages.index("import: node import") < stages.index("import: relationship import")
    assert summary.counts["Dataset"] == 1
    if case != "synth_records":
        assert summary.counts["Person"] == 3
    else:
        assert summary.counts["Record"] > 0 and summary.counts["MATCHED_TO"] > 0
    assert summary.elements == summary.files.elements - 1  # the marker is not an element
    assert "nodes-Dataset.csv" in {p.name for p in (tmp_path / "files").iterdir()}
    assert_same_as_merge(bulk_db, folder, tmp_path)


@pytest.mark.neo4j
def test_bulk_refuses_a_database_with_data_unless_told_to_overwrite(bulk_db, tmp_path):
    """On a database holding the Jiang case, --bulk of a synthetic population is refused
    (nothing changes); --overwrite asks first; confirmed, it loads the MERGE ingest's graph."""
    synth = tmp_path / "synth"
    generate(300, 7, synth)
    merge_loaded(bulk_db, jiang_case_path())
    before = dump(bulk_db)
    with pytest.raises(DatabaseNotEmpty, match="--overwrite"):
        bulk_ingest(synth, bulk_db.settings, admin=bulk_db.admin)

    s = bulk_db.settings
    args = ["ingest", str(synth), "--bulk", "--neo4j-uri", s.uri, "--neo4j-password", s.password]
    args += ["--neo4j-admin", " ".join(bulk_db.admin)]
    runner = CliRunner()
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1
    assert "holds" in refused.output and "--overwrite" in refused.output
    asked = runner.invoke(cli, [*args, "--overwrite"], input="n\n")
    assert asked.exit_code == 1 and "Replace everything" in asked.output
    assert dump(bulk_db) == before, "a refused bulk load changes nothing"

    loaded = runner.invoke(cli, [*args, "--overwrite", "--yes"])
    assert loaded.exit_code == 0, loaded.output
    assert "bulk-loaded" in loaded.output and "replaced" in loaded.output
    assert_same_as_merge(bulk_db, synth, tmp_path)


def test_files_only_writes_typed_files_and_the_command(tmp_path):
    """No Neo4j: the files (one per label and type, typed headers, every value quoted so
    that an empty string is not a missing value) and the neo4j-admin arguments."""
    out = tmp_path / "files"
    result = CliRunner().invoke(
        cli, ["ingest", str(jiang_case_path()), "--bulk", "--files-only", "--files", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "neo4j-admin database import full --id-type=integer --threads=" in result.output
    assert "--relationships=LISTS=relationships-LISTS-Phone.csv" in result.output
    loans = (out / "nodes-Loan.csv").read_text().splitlines()
    assert loans[0] == (
        ":ID(Loan),id:string,platform_id:string,borrower_id:string,applied_at:date,status:string,"
        "status_at:date,amount:double,applicant_phone:string,phone_verified:boolean"
    )
    assert (
        '"0","J-2019-BIZ","qiantang_bank","jiang","2019-04-08","repaid","2022-04-08","200000",'
        in (loans[1])
    )
    for wrong in (
        ["--files-only"],
        ["--overwrite"],
        ["--bulk", "--wipe"],
        ["--bulk", "--files-only"],
        ["--import-threads", "4"],
        ["--bulk", "--import-threads", "0"],
    ):
        refused = CliRunner().invoke(cli, ["ingest", str(jiang_case_path()), *wrong])
        assert refused.exit_code == 2, wrong


def test_a_failing_import_says_why(tmp_path):
    """The command's last lines (not a Java stack) are in the message; nothing is kept."""
    files = write_import_files(load_folder(jiang_case_path()), tmp_path / "files")
    script = tmp_path / "failing-admin.py"
    script.write_text(
        "import sys\n"
        "print('Import starting')\n"
        "print('\\tat org.neo4j.Stack.frame')\n"
        "print('Error: node file is broken', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    failing = [sys.executable, str(script)]
    with pytest.raises(ImportFailed, match="node file is broken") as failed:
        run_import(failing, files, "neo4j", overwrite=True, threads=2)
    assert "Stack.frame" not in str(failed.value)
    with pytest.raises(ImportFailed, match="cannot run"):
        run_import([str(tmp_path / "no-such-admin")], files, "neo4j", overwrite=True)


def test_open_periods_and_missing_values(tmp_path):
    """An open period's key is the empty string (quoted), an unknown end is no property."""
    synth = tmp_path / "synth"
    generate(200, 3, synth)
    data = read_dataset(synth)
    files = write_import_files(data, tmp_path / "files")
    owns = (tmp_path / "files" / "relationships-OWNS.csv").read_text().splitlines()
    assert owns[0].startswith(":START_ID(Person),:END_ID(Phone),period:string")
    periods = [p for periods in data.phone_periods.values() for p in periods if p.owner_id]
    assert files.counts["OWNS"] == len(periods) == len(owns) - 1
    with pytest.raises(Exception, match="not an empty folder"):
        write_import_files(data, tmp_path / "files")


def _ends(folder: Path, file: str) -> list[tuple[str, str, list[str]]]:
    """A relationship file's rows as (start key, end key, other fields), the import ids
    (row numbers of the node files) turned back into the nodes' keys."""
    import csv

    def keys(label: str) -> dict[str, str]:
        with open(folder / f"nodes-{label}.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        return {row[0]: row[1] for row in rows[1:]}

    with open(folder / file, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    start, end = (rows[0][i].split("(")[1].rstrip(")") for i in (0, 1))
    starts, ends = keys(start), keys(end)
    return [(starts[r[0]], ends[r[1]], r[2:]) for r in rows[1:]]


def test_records_go_into_their_files(tmp_path):
    """Platform records: Record nodes, HELD_BY their platform, MATCHED_TO their person with
    the match's properties, LISTS from an entry naming a record; loans keep the record."""
    out = tmp_path / "files"
    result = CliRunner().invoke(
        cli, ["ingest", str(jiang_records_path()), "--bulk", "--files-only", "--files", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = load_folder(jiang_records_path())
    header = (out / "relationships-MATCHED_TO.csv").read_text().splitlines()[0]
    assert header.startswith(":START_ID(Record),:END_ID(Person),matched_by:string")
    matched = {(a, b): props for a, b, props in _ends(out, "relationships-MATCHED_TO.csv")}
    assert matched.keys() == {(m.record_id, m.person_id) for m in data.matches.values()}
    assert matched["TY-R-XU", "jiang"][:3] == ["phone_only", "0.62", "QT-R-J"]
    lists = _ends(out, "relationships-LISTS-Record.csv")
    assert {
        (e.entry_id, e.subject) for e in data.entries.values() if e.subject_kind.value == "record"
    } == {(a, b) for a, b, _ in lists}
    held = {(a, b) for a, b, _ in _ends(out, "relationships-HELD_BY.csv")}
    assert held == {(r.record_id, r.platform_id) for r in data.records.values()}
    assert "borrower_record:string" in (out / "nodes-Loan.csv").read_text().splitlines()[0]


def test_import_files_in_the_data_folder_are_refused_before_anything(tmp_path):
    """The library refuses them before the folder is read or Neo4j reached."""
    from spillover.errors import OptionError
    from spillover.neo4j.settings import Neo4jSettings

    data = tmp_path / "d"
    shutil.copytree(jiang_case_path(), data)
    nowhere = Neo4jSettings(uri="bolt://127.0.0.1:9", user="neo4j", password="x")
    with pytest.raises(OptionError, match="is inside the FOLDER folder"):
        bulk_ingest(data, nowhere, files=data / "import")
    with pytest.raises(OptionError, match="holds the FOLDER folder"):
        bulk_ingest(data, None, files=tmp_path, files_only=True)
    assert not (data / "import").exists()


def test_ids_longer_than_neo4j_indexes_hold_are_refused_before_any_file(tmp_path):
    """An id past Neo4j's index key limit (docs/contract.md §5) would be imported, and the
    schema then fail on it, leaving a store without its constraints: the bulk load refuses
    the folder before it writes a file or reaches Neo4j."""
    from spillover.errors import SpilloverError
    from spillover.neo4j.settings import Neo4jSettings

    data = tmp_path / "d"
    shutil.copytree(jiang_case_path(), data)
    with (data / "blacklist.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"{'E' * 8165},westlake_bank,person,jiang,2024-03-12,,\n")
    nowhere = Neo4jSettings(uri="bolt://127.0.0.1:9", user="neo4j", password="x")
    with pytest.raises(SpilloverError, match=r"blacklist: entry_id 'EEEE.*' \(8165 bytes\)"):
        bulk_ingest(data, nowhere, files=tmp_path / "import")
    with pytest.raises(SpilloverError, match="Neo4j cannot hold this folder"):
        bulk_ingest(data, None, files=tmp_path / "import", files_only=True)
    assert not (tmp_path / "import").exists()
    result = CliRunner().invoke(
        cli, ["ingest", str(data), "--bulk", "--files-only", "--files", str(tmp_path / "import")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("spillover: error: Neo4j cannot hold this folder")
    assert not (tmp_path / "import").exists()
