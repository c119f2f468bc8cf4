"""The packaged seed case, explained: what ``spillover demo`` shows."""

from __future__ import annotations

from dataclasses import dataclass

from .connect import open_backend
from .engines.search import Explanation, explain_about_person
from .examples import jiang_case_path
from .neo4j.settings import Neo4jSettings
from .policy import Policy
from .render.text import explanation_text
from .text.safe import printable_lines
from .text.wording import score_text

__all__ = ["Demo", "demo_text", "run_demo"]


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
        from .neo4j.ingest import DatasetMismatch, ingest_folder
        from .neo4j.store import connect

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


def demo_text(demo: Demo) -> str:
    """The seed case as a person reads it: every entry on the subject, then the contrast."""
    name = (
        demo.explanations[0].names.get(f"person:{demo.person}", demo.person)
        if demo.explanations
        else demo.person
    )
    lines = [
        f"The Jiang case ({demo.where}): {len(demo.explanations)} blacklist entries name "
        f"{name} or a phone they owned.",
        "",
    ]
    for e in demo.explanations:
        lines += [*explanation_text(e).split("\n"), ""]
    for borrower, explanations in demo.contrast.items():
        if not explanations:
            continue
        who = explanations[0].names.get(f"person:{borrower}", borrower)
        lines.append(f"For contrast, the entries on {who}, whose loans these chains start from:")
        for e in explanations:
            best = e.best
            origin = (
                f"origin {best.origin.loan_id} ({best.origin.status.value})"
                if best
                else "no origin"
            )
            platform = e.names.get(f"platform:{e.entry.platform_id}", e.entry.platform_id)
            lines.append(
                f"  {e.entry.entry_id:<10} {platform:<28} {e.entry.listed_at}  "
                f"{e.verdict.upper():<12} contamination {score_text(e.contamination)}  {origin}"
            )
        lines.append("")
    return printable_lines(lines).rstrip() + "\n"
