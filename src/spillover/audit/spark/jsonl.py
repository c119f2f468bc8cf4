"""A JSONL table's lines checked on Spark as the embedded loader reads them
(docs/scale-out.md: what the Spark path checks), before Spark's JSON reader takes the
values: each line one JSON object and nothing after it, valid UTF-8, no key given twice
and no lone surrogate in any string, and no ``true``, ``false``, object or array in a
field of the contract that holds text or a number.

Spark's reader is lenient where the loader is not: it reads a line holding an array of
objects as those rows, ignores what follows the object, keeps the last of two equal keys,
reads ``true`` or an object where text is expected as its JSON text and a lone surrogate
as ``?``. The checks run in one Spark job over the file as text, with the JVM's own JSON
functions (no Python on the executors, nor a parse of every line on the driver):

- ``try_parse_json`` (Spark's variant parser) is not null: the line is JSON, with no key
  given twice and no lone surrogate in a string (its defaults:
  ``spark.sql.variant.allowDuplicateKeys`` false,
  ``spark.sql.variant.validateUnicodeInJsonParsing`` true);
- the line starts with ``{`` (after JSON's blanks) and nothing follows the object:
  Spark's parsers stop after the first value and ignore the rest, so a line whose first
  ``}`` is not its last character (blanks aside) is parsed wrapped as ``[LINE]``, an
  array of one value, and as ``{"_":LINE}``, an object (anything after the object breaks
  the array; a ``]`` after it ends the array early and breaks the object instead). A
  line whose first ``}`` is its last (a flat object, nearly every line of a data
  folder) ends with its object: no wrap is parsed;
- each field that holds text or a number (:func:`json_checked`): the type of its value
  (``schema_of_variant``) is no ``BOOLEAN``, ``OBJECT`` or ``ARRAY``.

A line blank after trimming (``str.strip()``'s characters) is skipped, as the loader skips
it; a byte-order mark at the start of a line is dropped (Spark's reader skips it). The
first offending line of each kind is worded on the driver by the embedded loader's own
rules (:func:`spillover.data.exact.jsonl_line_problems`, the row models)."""

from __future__ import annotations

import json
import types
import typing
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ...data.contract import SPACES
from ...data.contract import TABLES as CONTRACT_TABLES
from ...data.exact import error_text, jsonl_line_problems
from ...data.rows import Row

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["json_checked", "jsonl_problems"]

#: the longest part of a refused line a refusal shows
_SHOWN = 80
#: ``schema_of_variant``'s names of the JSON values a text or number field refuses
_NOT_TEXT = ("BOOLEAN", "OBJECT", "ARRAY")


def json_checked(model: type[Row]) -> list[str]:
    """The fields of a table whose JSON value must be text, a number or null (their type
    ``str`` or ``float``): the loader refuses ``true``, ``false``, an object or an array
    there. An enumeration, a boolean or a day is refused by its value on Spark too;
    ``waterfall`` takes a JSON list.

    >>> from spillover.data.rows import LoanRow, MatchRow
    >>> json_checked(LoanRow)
    ['loan_id', 'platform_id', 'borrower_record', 'borrower_id', 'applicant_phone', 'amount']
    >>> json_checked(MatchRow)
    ['record_id', 'person_id', 'match_probability', 'matched_with', 'match_weight']
    """
    out = []
    for name, f in model.model_fields.items():
        choices = (
            [a for a in typing.get_args(f.annotation) if a is not type(None)]
            if typing.get_origin(f.annotation) in (typing.Union, types.UnionType)
            else [f.annotation]
        )
        if choices in ([str], [float]):
            out.append(name)
    return out


def jsonl_problems(spark: SparkSession, path: str, table: str) -> list[str]:
    """The JSONL table ``table`` at ``path`` checked line by line as the embedded loader
    reads it (the module's checks) in one Spark job: one line per kind of problem, in the
    style of the other refusals (``DIR/people.jsonl: (row): 2 row(s) refused: not valid
    JSON: Extra data at column 33 (first: {"person_id": ...})``), the first offending
    line worded by the loader's rules. Empty: every line is good."""
    from pyspark.sql import functions as F

    fields = json_checked(CONTRACT_TABLES[table])
    found = (
        _marks(spark.read.text(path), fields)
        .agg(
            F.count_if("bad"),
            F.first(F.when(F.col("bad"), F.col("raw").cast("binary")), ignorenulls=True),
            *(F.count_if(f"w{i}") for i in range(len(fields))),
            *(F.first(f"s{i}", ignorenulls=True) for i in range(len(fields))),
        )
        .first()
    )
    assert found is not None
    out = []
    if found[0]:
        data = bytes(found[1]).removeprefix("\ufeff".encode())
        field, message = (jsonl_line_problems(data) or [("(row)", _NOT_ONE_OBJECT)])[0]
        out.append(f"{path}: {field}: {found[0]} row(s) refused: {message} (first: {_cut(data)})")
    counts, firsts = found[2 : 2 + len(fields)], found[2 + len(fields) :]
    for name, n, first in zip(fields, counts, firsts, strict=True):
        if n:
            message = _value_problem(CONTRACT_TABLES[table], name, first)
            out.append(f"{path}: {name}: {n} row(s) refused: {message} (first: {first})")
    return out


def _marks(text: DataFrame, fields: list[str]) -> DataFrame:
    """Every line not blank of ``text`` (Spark's text reader: ``value``) as ``raw`` (the
    line), ``bad`` (not one JSON object and nothing after it: the module's checks) and for
    field ``i`` of ``fields`` ``w{i}`` (its value a JSON true, false, object or array) and
    ``s{i}`` (its value as JSON). One projection per step, so that Spark parses each line
    once with each function (an expression used twice in one projection or aggregation is
    computed twice)."""
    from pyspark.sql import functions as F

    raw, line = F.col("raw"), F.col("line")
    lines = text.select(
        F.col("value").alias("raw"),
        # a byte-order mark opening a line (Spark's JSON reader skips it)
        F.when(F.col("value").startswith("\ufeff"), F.substring("value", 2, 1 << 30))
        .otherwise(F.col("value"))
        .alias("line"),
    ).where(F.ltrim("line", F.lit(SPACES)) != "")  # blank: all of it trimmed from the left
    parsed = lines.select("raw", "line", F.try_parse_json(line).alias("v"))
    # what follows the object: nothing, when the line's first "}" is its last character
    # but spaces (the object's own "}" is that one); else the two wraps tell. (Spark's
    # trims with a set of characters copy the line; the plain ones and instr do not.)
    closed = F.instr(line, "}") == F.length(F.rtrim(line))
    after = (
        F.coalesce(F.json_array_length(F.concat(F.lit("["), line, F.lit("]"))) != 1, F.lit(True))
        | F.json_object_keys(F.concat(F.lit('{"_":'), line, F.lit("}"))).isNull()
    )
    bad = (
        ~F.is_valid_utf8(raw)
        | F.col("v").isNull()
        | ~F.ltrim(line, F.lit(" \t")).startswith("{")
        | F.when(closed, F.lit(False)).otherwise(after)
    )
    values = parsed.select(
        "raw",
        bad.alias("bad"),
        *(
            F.variant_get("v", f"$.{name}", "variant").alias(f"s{i}")
            for i, name in enumerate(fields)
        ),
    )
    kinds = values.select(
        "raw",
        "bad",
        *(F.schema_of_variant(f"s{i}").alias(f"k{i}") for i in range(len(fields))),
        *(F.col(f"s{i}") for i in range(len(fields))),
    )
    marks = []
    for i in range(len(fields)):
        wrong = F.lit(False)
        for what in _NOT_TEXT:
            wrong = wrong | F.col(f"k{i}").startswith(what)
        wrong = ~F.col("bad") & wrong
        marks += [wrong.alias(f"w{i}"), F.when(wrong, F.to_json(f"s{i}")).alias(f"s{i}")]
    return kinds.select("raw", "bad", *marks)


#: a line Spark's JSON parser refuses and the embedded loader reads (its limits are tighter)
_NOT_ONE_OBJECT = (
    "not read by Spark's JSON parser (its limits: a number of up to 1,000 digits, "
    "nesting up to 1,000 levels deep)"
)


def _cut(data: bytes) -> str:
    """A line as a refusal shows it: its first :data:`_SHOWN` characters."""
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _value_problem(model: type[Row], name: str, value: str) -> str:
    """What the row model says of ``value`` (JSON text) in the field ``name``: the
    embedded loader's words (``Input should be a valid string``)."""
    try:
        model.model_validate({name: json.loads(value)})
    except ValidationError as exc:
        for err in exc.errors():
            if tuple(err.get("loc", ()))[:1] == (name,):
                return error_text(err)
    return "not text or a number"
