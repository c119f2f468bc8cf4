"""The data contract's table specs (docs/contract.md §1), defined once: what is not a column.

The columns of each table are spelled in one place only, the pydantic row models of
:mod:`spillover.data.rows`. This module says everything else a reader or a writer of a data
folder needs: which tables there are (and in which order their files are read and
written), which of them a folder must hold, which belong to identity linkage, the file
suffixes a table may have, how booleans are read and written, the ISO day pattern and
the years a day may lie in. The exact loader, the fast loader, the Spark validator,
synth, export and bulk all take these from here (``tests/test_contract.py`` fails if
one of them spells a table list, a boolean spelling or a year bound again).

The reading rules (:data:`TRUE_TEXTS`, :data:`FALSE_TEXTS`, :data:`ISO_DAY`,
:data:`MIN_YEAR`, :data:`MAX_YEAR`, the characters a cell is trimmed of: :data:`SPACES`)
are defined beside the row models that apply them (:mod:`spillover.data.rows` sits
below this module, which maps table names to those models) and re-exported here: import them from here. The days before and after every day
(``NEVER``/``FOREVER``) are in :mod:`spillover.facts.columns`; the ID shapes in
:mod:`spillover.facts.resident_id` and :mod:`spillover.facts.phones`.

>>> list(TABLES)[:4] == list(REQUIRED_TABLES)
True
>>> required_columns(TABLES["loan_links"])
['loan_id', 'phone', 'role']
>>> columns("sharing")
['from_platform', 'to_platform', 'since']
>>> role = ENUM_COLUMNS["loan_links", "role"]
>>> role.__name__, enum_values(role)
('LinkRole', ('emergency_contact', 'reference', 'address_book', 'guarantor'))
"""

from __future__ import annotations

import typing
from enum import StrEnum

from .rows import (
    FALSE_TEXTS,
    ISO_DAY,
    MAX_YEAR,
    MIN_YEAR,
    SPACES,
    TRUE_TEXTS,
    BlacklistRow,
    LoanLinkRow,
    LoanRow,
    MatchRow,
    PersonRow,
    PhoneRow,
    PlatformRow,
    RecordRow,
    Row,
    SharingRow,
    field_kinds,
    required_columns,
)

__all__ = [
    "CSV",
    "ENUM_COLUMNS",
    "FALSE",
    "FALSE_TEXTS",
    "ISO_DAY",
    "JSONL",
    "LINKAGE_TABLES",
    "MAX_YEAR",
    "MIN_YEAR",
    "PARQUET",
    "REQUIRED_TABLES",
    "SPACES",
    "SUFFIXES",
    "TABLES",
    "TRUE",
    "TRUE_TEXTS",
    "columns",
    "enum_values",
    "field_kinds",
    "required_columns",
]

#: table name -> its row model, in file order (the order loaders read and writers write)
TABLES: dict[str, type[Row]] = {
    "people": PersonRow,
    "platforms": PlatformRow,
    "phones": PhoneRow,
    "loans": LoanRow,
    "loan_links": LoanLinkRow,
    "blacklist": BlacklistRow,
    "sharing": SharingRow,
    # identity linkage (docs/contract.md §1): optional tables
    "records": RecordRow,
    "matches": MatchRow,
}
#: the tables every data folder must hold (the others may be missing: no rows)
REQUIRED_TABLES = tuple(TABLES)[:4]
#: the identity-linkage tables (docs/contract.md §1), optional
LINKAGE_TABLES = ("records", "matches")

#: the file suffixes of a table (``people.csv``, ``people.jsonl``, ``people.parquet``: a
#: Parquet file or a folder of parts), in the order a loader looks for them
CSV, JSONL, PARQUET = ".csv", ".jsonl", ".parquet"
SUFFIXES = (CSV, JSONL, PARQUET)

#: how a boolean is written (every writer: synth, export, the Spark audit)
TRUE, FALSE = TRUE_TEXTS[0], FALSE_TEXTS[0]


def columns(table: str) -> list[str]:
    """The columns of ``table`` in the order of its row model (the header writers use)."""
    return list(TABLES[table].model_fields)


def enum_values(kind: type[StrEnum]) -> tuple[str, ...]:
    """The values a column of the enum ``kind`` (:mod:`spillover.facts.model`: roles,
    statuses, kinds) may hold, in the enum's order: the one spelling of them."""
    return tuple(member.value for member in kind)


def _enum_columns() -> dict[tuple[str, str], type[StrEnum]]:
    out: dict[tuple[str, str], type[StrEnum]] = {}
    for table, model in TABLES.items():
        for name, field in model.model_fields.items():
            choices = [field.annotation, *typing.get_args(field.annotation)]
            for choice in choices:
                if isinstance(choice, type) and issubclass(choice, StrEnum):
                    out[table, name] = choice
    return out


#: (table, column) -> the enum of :mod:`spillover.facts.model` whose values the column
#: holds (read from the row models' types): ``platforms.kind``, ``loans.status``,
#: ``loan_links.role``, ``blacklist.subject_kind``, ``matches.matched_by``
ENUM_COLUMNS: dict[tuple[str, str], type[StrEnum]] = _enum_columns()
