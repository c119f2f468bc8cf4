"""The packaged seed case, explained: what ``spillover demo`` shows."""

from __future__ import annotations

from dataclasses import dataclass

from .connect import open_backend
from .core import Explanation, explain_about_person
from .examples import jiang_case_path
from .policy import Policy
from .settings import Neo4jSettings

__all__ = ["Demo", "run_demo"]


@dataclass(frozen=True)
class Demo:
    """Every entry on ``person`` (by listing day) and, for contrast, the entries on the
    borrowers whose defaults explain them."""

    person: str
    explanations: list[Explanation]
    contrast: dict[str, list[Explanation]]
    where: str


def _by_day(explanations: list[Explanation]) -> list[Explanation]:
    return sorted(explanations, key=lambda e: (e.entry.listed_at, e.entry.entry_id or ""))


def run_demo(
    person: str = "jiang",
    policy: Policy | None = None,
    *,
    neo4j: Neo4jSettings | None = None,
    max_paths: int | None = None,
) -> Demo:
    """Explain the seed case. With ``neo4j``, the case is first written into that database
    (an ingest of dataset ``jiang_case``: refused when the database holds another dataset)
    and explained from there."""
    folder = jiang_case_path()
    if neo4j is not None:
        from .backends.neo4j import connect
        from .ingest import DatasetMismatch, ingest_folder

        driver = connect(neo4j)
        try:
            ingest_folder(folder, driver, neo4j.database)
        except DatasetMismatch as exc:
            raise DatasetMismatch(
                f"demo writes the Jiang case into the database, but {exc}. Use an empty "
                "database for the demo"
            ) from None
        finally:
            driver.close()
    backend = open_backend(None if neo4j else folder, neo4j)
    try:
        explanations = _by_day(explain_about_person(backend, person, policy, max_paths=max_paths))
        borrowers = sorted(
            {p.origin.borrower_id for e in explanations for p in e.paths[:1]} - {person}
        )
        contrast = {
            b: _by_day(explain_about_person(backend, b, policy, max_paths=1)) for b in borrowers
        }
    finally:
        backend.close()
    return Demo(person, explanations, contrast, neo4j.uri if neo4j else "the embedded graph")
