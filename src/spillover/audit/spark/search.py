"""The layered search as DataFrame steps, named after the numpy kernel's
(:meth:`spillover.engines.batch.Index.audit`): :func:`_entries` and :func:`_start` (the
subjects), then per layer :func:`_person_ties` and :func:`_phone_ties` (candidate
labels), :func:`_best_per_loan` (one label per entry and loan), :func:`_record_origins`
and :func:`_to_borrowers` (the next frontier); :func:`~.result.result` reads the best
paths back as the audit rows.

The ties are tables: person -> loan (own loans, and loans naming a phone the person owned
on the application day), phone -> loan (for phone subjects). Every layer joins the
frontier labels to their ties, keeps loans applied no later than the listing, and keeps
the best label per (entry, loan) by the kernel's order: responsibility, then the path's
key ``(phone, role, loan, borrower, ...)`` compared as an array of id strings (the
kernel's integer codes sort like those strings), less labels an earlier layer beats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ...data.contract import FALSE, TRUE
from ...engines import batch as k
from ...facts.model import SubjectKind
from ...facts.phones import DEFAULT_REGION
from ...policy import Policy, default_policy
from ...rules import APPLICANT, CHAIN_STEP, TIE_KINDS, factor, match_kind
from .expressions import as_text, lookup
from .frames import text_frames
from .graph import Graph, typed_graph
from .kept import checkpoint
from .reach import reach
from .result import result

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["BROADCAST_BELOW", "audit_frames", "audit_graph", "broadcast_all"]


def audit_frames(
    spark: SparkSession,
    tables: Mapping[str, DataFrame],
    policy: Policy | None = None,
    *,
    region: str = DEFAULT_REGION,
    check: bool = True,
) -> DataFrame:
    """The audit rows (docs/contract.md §4 columns, in ``entry_id`` order) of a graph
    given as Spark DataFrames, one per table of docs/contract.md §1 (column names as
    there, values as text or typed; absent optional tables may be left out).

    ``check`` runs the Spark path's checks (:func:`read_tables` gives text columns;
    docs/scale-out.md says what is checked). The simulator's audit step can call this
    with the tables it made."""
    policy = policy or default_policy()
    full = text_frames(spark, tables)
    g = typed_graph(spark, full, region, check)
    return audit_graph(spark, g, policy, small=broadcast_all(spark, full))


#: the size of the tables (Spark's estimate: once checked, their cached size) under which
#: the search broadcasts its index tables; the largest, the ties, takes a few times this
#: in memory on the driver and on every executor
BROADCAST_BELOW = 32 << 20
#: the tables the search's index is not made of (not counted by :func:`broadcast_all`)
_NOT_INDEXED = ("people", "platforms")


def broadcast_all(spark: SparkSession, tables: Mapping[str, DataFrame]) -> bool:
    """Whether the search broadcasts its index tables (the ties, the origin and borrower
    tables, the reach, the best so far, what was seen): when the tables together are
    under :data:`BROADCAST_BELOW` by Spark's own size estimate (their cached size once
    the checks have read them, else the files' sizes or the rows given), unless broadcast
    joins are off (``spark.sql.autoBroadcastJoinThreshold=-1``). A small folder then runs
    each layer's joins without shuffling the labels; a large one lets Spark plan them."""
    if int(spark._jsparkSession.sessionState().conf().autoBroadcastJoinThreshold()) < 0:
        return False
    size = 0
    for name, df in tables.items():
        if name in _NOT_INDEXED:
            continue
        size += int(str(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
    return size <= BROADCAST_BELOW


def audit_graph(spark: SparkSession, g: Graph, policy: Policy, *, small: bool = False) -> DataFrame:
    """The audit rows of a typed graph (docs/contract.md §4 columns, entry_id order);
    ``small``: broadcast the index tables in every layer (:func:`broadcast_all`)."""
    rules = _rules(policy)
    index = _index(g, rules, policy, small)
    entries = _entries(g)
    # a large folder's reach keeps its partitioning by (entry, platform): each layer's
    # join of its origins to it then shuffles only the origins
    reaches = (_cache if small else _kept_partitioned)(reach(spark, g, small))
    state = _start(entries, rules)
    for depth in range(1, policy.max_loans + 1):
        candidates = _person_ties(state, index, rules, depth)
        if depth == 1:
            candidates = candidates.unionByName(_phone_ties(entries, index, rules, policy))
        labels, state = _best_per_loan(state, candidates, index)
        state = _record_origins(state, labels, index, reaches, depth)
        if depth == policy.max_loans:
            break
        state = _to_borrowers(state, labels, index, rules)
    best = state.best if state.best is not None else _no_best(spark)
    return result(spark, g.entries, best, policy)


# -- the rules, as Spark expressions ---------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """The kernel's compiled rule tables, keyed by text for Spark map literals."""

    use_kind: dict[str, int]  # "role|sms" -> kind code
    subject_kind: dict[str, int]  # "role|sms|owned|changed" -> kind code
    owns_kind: dict[str, int]  # "true"/"false" (verified) -> kind code
    kind_factor: dict[int, float]  # kind code -> factor under the policy
    own_unverified: int
    own_loan: dict[int, int]  # subject (1) or chained (0) -> kind code
    chain_factor: float
    match_factor: dict[int, float]  # match (index in kernel.MATCH_KEYS) -> factor


def _rules(policy: Policy) -> _Rules:
    def bit(b: int) -> str:
        return TRUE if b else FALSE

    roles = k.ROLE_NAMES
    return _Rules(
        use_kind={
            f"{r}|{bit(s)}": int(k.USE_KIND[i, s]) for i, r in enumerate(roles) if r for s in (0, 1)
        },
        subject_kind={
            f"{r}|{bit(s)}|{bit(o)}|{bit(c)}": int(k.SUBJECT_PHONE_KIND[i, s, o, c])
            for i, r in enumerate(roles)
            if r
            for s in (0, 1)
            for o in (0, 1)
            for c in (0, 1)
        },
        owns_kind={bit(v): int(k.OWNS_KIND[v]) for v in (0, 1)},
        kind_factor={i: factor(policy, kind) for i, kind in enumerate(TIE_KINDS)},
        own_unverified=int(k.OWNS_UNVERIFIED),
        own_loan={s: int(k.LOAN_KIND[s]) for s in (0, 1)},
        chain_factor=factor(policy, CHAIN_STEP),
        match_factor={i: factor(policy, match_kind(key)) for i, key in enumerate(k.MATCH_KEYS)},
    )


def _match_factor(rules: _Rules, c: Column) -> Column:
    """The factor of a match (1.0: none, -1)."""
    from pyspark.sql import functions as F

    return F.coalesce(lookup(rules.match_factor, c), F.lit(1.0))


# -- the ties (the kernel's Index) -----------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    """The ties of a graph, as the kernel's Index holds them."""

    #: (phone, role, loan) from applicant phones and links, with the phone's owner on the
    #: application day: loan_id, phone, role, borrower, applied, sms, match, owner,
    #: owner_verified
    uses: DataFrame
    #: person -> loan: person, loan_id, applied, t_phone, t_role, t_kind, t_f1,
    #: t_unverified, l_match, and the loan's own columns a label carries (:data:`_LOAN`:
    #: so that a layer needs no join back to the loans), partitioned by person once
    ties: DataFrame
    #: broadcast the index tables and the pass's per-entry tables (:func:`broadcast_all`)
    small: bool = False

    def side(self, df: DataFrame) -> DataFrame:
        """``df`` as the broadcast side of a join when the graph is small."""
        from pyspark.sql import functions as F

        return F.broadcast(df) if self.small else df


def _index(g: Graph, rules: _Rules, policy: Policy, small: bool = False) -> _Index:
    from pyspark.sql import functions as F

    col = F.col
    loans = g.loans
    uses = _uses(g, small)
    own = loans.select(
        col("borrower").alias("person"),
        "loan_id",
        "applied",
        "platform",
        "borrower",
        "known",
        "status",
        "match",
        F.lit("").alias("t_phone"),
        F.lit("").alias("t_role"),
        F.lit(None).cast("int").alias("t_kind"),
        # an own loan named by a record: the record's match step first
        _match_factor(rules, col("match")).alias("t_f1"),
        F.lit(False).alias("t_unverified"),
        col("match").alias("l_match"),
    )
    owns_kind = lookup(rules.owns_kind, as_text(col("owner_verified")))
    via_phone = uses.where(col("owner").isNotNull() & (col("owner") != col("borrower"))).select(
        col("owner").alias("person"),
        "loan_id",
        "applied",
        "platform",
        "borrower",
        "known",
        "status",
        "match",
        col("phone").alias("t_phone"),
        col("role").alias("t_role"),
        lookup(rules.use_kind, F.concat_ws("|", col("role"), as_text(col("sms")))).alias("t_kind"),
        lookup(rules.kind_factor, owns_kind).alias("t_f1"),
        (owns_kind == rules.own_unverified).alias("t_unverified"),
        col("match").alias("l_match"),
    )
    ties = own.unionByName(via_phone).select(
        "person",
        "loan_id",
        "applied",
        "t_phone",
        "t_role",
        "t_kind",
        "t_f1",
        "t_unverified",
        "l_match",
        *_loan_columns(rules, policy),
    )
    if not small:
        # every layer joins the ties by person: shuffled and sorted once, here, into a
        # fixed number of parts (adaptive execution does not merge those), which the
        # layers' joins keep (they shuffle only the frontier)
        n = int(g.loans.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)
        ties = _kept_partitioned(ties.repartition(n, "person").sortWithinPartitions("person"))
        return _Index(uses=uses, ties=ties, small=small)
    return _Index(uses=uses, ties=_cache(ties), small=small)


def _kept_partitioned(df: DataFrame) -> DataFrame:
    """:func:`_cache` of ``df`` planned without adaptive execution, so that the kept frame
    tells Spark its partitioning and order: a local checkpoint of an adaptive plan tells
    none, and every join of it would shuffle and sort it again (at 1M people: the 6.5
    million ties, in every layer)."""
    spark = df.sparkSession
    key = "spark.sql.adaptive.enabled"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    try:
        return _cache(df)
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


#: the loan's columns every label carries: whether it is an origin loan (its status one
#: of the policy's), its platform, its borrower (loan -BORROWED_BY-> borrower), the day
#: its status was known, and the factor of the step to its borrower (its record's match)
_LOAN = ("origin", "o_platform", "b_person", "known", "b_mf")


def _loan_columns(rules: _Rules, policy: Policy) -> list[Column]:
    """The :data:`_LOAN` columns of a frame of loans (a loan's ``platform``, ``borrower``,
    ``known``, ``status``, ``match``)."""
    from pyspark.sql import functions as F

    col = F.col
    return [
        col("status").isin(*sorted(s.value for s in policy.origin_statuses)).alias("origin"),
        col("platform").alias("o_platform"),
        col("borrower").alias("b_person"),
        col("known"),
        _match_factor(rules, col("match")).alias("b_mf"),
    ]


def _uses(g: Graph, small: bool) -> DataFrame:
    """(phone, role, loan) from applicant phones and links, with the owner of the phone
    on the application day (``small``: the loans and owners broadcast)."""
    from pyspark.sql import functions as F

    col = F.col

    def side(df: DataFrame) -> DataFrame:
        return F.broadcast(df) if small else df

    loans = g.loans
    applicant = loans.where(col("applicant").isNotNull()).select(
        "loan_id", col("applicant").alias("phone"), F.lit(APPLICANT).alias("role")
    )
    uses = applicant.unionByName(g.links.select("loan_id", "phone", "role")).join(
        side(loans.select("loan_id", "borrower", "applied", "sms", "match", *_LOAN_OF_USES)),
        "loan_id",
    )
    # a large folder's uses keep the partitioning and order by phone of their join to
    # the owner periods: the first layer's join of the phone subjects to them then
    # shuffles only the subjects
    return (_cache if small else _kept_partitioned)(
        uses.join(side(_periods(g)), _covering(col("phone"), col("applied")), "left").select(
            "loan_id",
            "phone",
            "role",
            "borrower",
            "applied",
            "sms",
            "match",
            *_LOAN_OF_USES,
            "owner",
            F.coalesce(col("owner_verified"), F.lit(False)).alias("owner_verified"),
        )
    )


#: the loan's columns the uses carry beside their own (for :func:`_loan_columns`)
_LOAN_OF_USES = ("platform", "known", "status")


def _periods(g: Graph) -> DataFrame:
    """The owner periods as :func:`_covering` joins them: o_phone, owner, owner_verified,
    o_since, o_until."""
    from pyspark.sql import functions as F

    col = F.col
    return g.periods.select(
        col("phone").alias("o_phone"),
        "owner",
        col("verified").alias("owner_verified"),
        col("since").alias("o_since"),
        col("until").alias("o_until"),
    )


def _covering(phone: Column, day: Column) -> Column:
    """The join of a (phone, day) to the owner period covering the day (left: nulls when
    none does). The periods of one number do not overlap (checked, as the loaders check
    them), so at most one covers a day: the kernel's last period starting on or before
    the day, if it lasts to the day. One join, not a grouping of every earlier period."""
    from pyspark.sql import functions as F

    col = F.col
    return (phone == col("o_phone")) & (col("o_since") <= day) & (col("o_until") >= day)


def _cache(df: DataFrame) -> DataFrame:
    """``df`` computed now and kept, its plan cut short (every layer builds on the one
    before: without the cut, the plans would grow with every layer)."""
    return checkpoint(df)


# -- the pass, step by step ------------------------------------------------------------------


@dataclass(frozen=True)
class _Entries:
    """The entries of a pass: their person subjects (a record subject from its person) and
    phone subjects with the phone's owner on the listing day."""

    persons: DataFrame  # the graph's entries with a person
    phones: DataFrame  # entry, s_phone, e_listed, owner_now


@dataclass(frozen=True)
class _PassState:
    """What one pass carries from layer to layer."""

    #: person labels a layer starts from: entry, person, resp, key, path, mpath, and the
    #: entry's listing day and best responsibility so far (e_listed, b_resp; -1.0: none),
    #: carried with the labels rather than joined back every layer
    frontier: DataFrame
    #: (entry, person) and (entry, loan) reached at earlier layers, with the responsibility
    #: (seen_loans None: none yet)
    seen_persons: DataFrame
    seen_loans: DataFrame | None
    #: each entry's best origin so far: entry, b_resp, b_depth, b_loan, b_borrower,
    #: b_platform, b_path, b_mpath, b_hops, b_chain (None: none yet)
    best: DataFrame | None


def _entries(g: Graph) -> _Entries:
    """The entries' person subjects, the phone subjects' owners on the listing day."""
    from pyspark.sql import functions as F

    col = F.col
    entries = g.entries
    # phone subjects and their owner on the listing day
    phone_entries = entries.where(col("kind") == SubjectKind.PHONE.value)
    phones = phone_entries.join(
        _periods(g), _covering(col("subject"), col("listed")), "left"
    ).select(
        col("entry_id").alias("entry"),
        col("subject").alias("s_phone"),
        col("listed").alias("e_listed"),
        col("owner").alias("owner_now"),
    )
    # person subjects, and record subjects from their person through the match step
    persons = entries.where(col("person").isNotNull())
    return _Entries(persons=persons, phones=phones)


def _start(entries: _Entries, rules: _Rules) -> _PassState:
    """The search before its first layer: person subjects on the frontier, seen."""
    from pyspark.sql import functions as F

    col = F.col
    frontier = entries.persons.select(
        col("entry_id").alias("entry"),
        "person",
        _match_factor(rules, col("match")).alias("resp"),
        F.array().cast("array<string>").alias("key"),
        F.array().cast("array<int>").alias("path"),
        F.array().cast("array<int>").alias("mpath"),
        col("listed").alias("e_listed"),
        F.lit(-1.0).alias("b_resp"),
    )
    return _PassState(
        frontier=frontier,
        seen_persons=frontier.select("entry", "person", "resp"),
        seen_loans=None,
        best=None,
    )


def _no_best(spark: SparkSession) -> DataFrame:
    """The best origins of a pass that found none (the columns of :class:`_PassState`)."""
    return spark.createDataFrame(
        [],
        "entry string, b_resp double, b_depth int, b_loan string, b_borrower string, "
        "b_platform string, b_path array<int>, b_mpath array<int>, b_hops int, b_chain int",
    )


def _person_ties(state: _PassState, index: _Index, rules: _Rules, depth: int) -> DataFrame:
    """Candidates from the frontier people to loans: their own loans, and loans naming a
    phone they owned on the application day; in time, and able to beat the entry's best
    (both carried by the frontier)."""
    from pyspark.sql import functions as F

    col = F.col
    own_kind = rules.own_loan[int(depth == 1)]  # only the subject's own loan is OWN_DEFAULT
    c = state.frontier.join(index.side(index.ties), "person")
    kind = F.coalesce(col("t_kind"), F.lit(own_kind))
    c = c.withColumn("kind", kind).withColumn(
        "c_resp", (col("resp") * col("t_f1")) * lookup(rules.kind_factor, col("kind"))
    )
    c = c.where((col("applied") <= col("e_listed")) & (col("c_resp") > col("b_resp")))
    return c.select(
        "entry",
        "loan_id",
        col("c_resp").alias("resp"),
        F.concat(col("key"), F.array(col("t_phone"), col("t_role"))).alias("key"),
        F.concat(
            col("path"),
            F.array((col("kind") * 2 + col("t_unverified").cast("int")).cast("int")),
        ).alias("path"),
        # the match of each layer's loan's record (-1: none), for the reason codes
        F.concat(col("mpath"), F.array(col("l_match").cast("int"))).alias("mpath"),
        "e_listed",
        *_LOAN,
    )


def _phone_ties(entries: _Entries, index: _Index, rules: _Rules, policy: Policy) -> DataFrame:
    """Candidates from phone subjects to the loans naming them (first layer only)."""
    from pyspark.sql import functions as F

    col = F.col
    p = entries.phones.join(index.side(index.uses), col("s_phone") == col("phone")).where(
        col("applied") <= col("e_listed")
    )
    owned = col("owner").isNotNull() & (col("owner") == col("borrower"))
    changed = col("owner_now").isNotNull() & ~(
        col("owner").isNotNull() & (col("owner_now") == col("owner"))
    )
    skind = lookup(
        rules.subject_kind,
        F.concat_ws("|", col("role"), as_text(col("sms")), as_text(owned), as_text(changed)),
    )
    p = p.withColumn("kind", skind)
    return p.select(
        "entry",
        "loan_id",
        (F.lit(1.0) * lookup(rules.kind_factor, col("kind"))).alias("resp"),
        F.array(col("s_phone"), col("role")).alias("key"),
        F.array((col("kind") * 2).cast("int")).alias("path"),
        F.array(col("match").cast("int")).alias("mpath"),
        "e_listed",
        *_loan_columns(rules, policy),
    )


def _unbeaten(df: DataFrame, seen: DataFrame | None, keys: list[str], index: _Index) -> DataFrame:
    """The rows of ``df`` (``keys`` and ``resp``) that no ``seen`` row of the same keys
    reaches as well or better (an anti join: no grouping of what was seen)."""
    from pyspark.sql import functions as F

    if seen is None:
        return df
    s = seen.select(*(F.col(k).alias(f"_s_{k}") for k in keys), F.col("resp").alias("_s_resp"))
    on = [F.col(k) == F.col(f"_s_{k}") for k in keys]
    cond = on[0]
    for c in on[1:]:
        cond = cond & c
    return df.join(index.side(s), cond & (F.col("_s_resp") >= F.col("resp")), "left_anti")


def _best_per_loan(
    state: _PassState, candidates: DataFrame, index: _Index
) -> tuple[DataFrame, _PassState]:
    """The best label per (entry, loan) by responsibility then key, less what an earlier
    layer beats; the labels, and the state that has seen them."""
    from pyspark.sql import functions as F

    labels = candidates.groupBy("entry", "loan_id").agg(
        F.min(F.struct(F.negative("resp").alias("nr"), "key", "path", "mpath")).alias("m"),
        F.max("e_listed").alias("e_listed"),  # the entry's: one value
        *(F.max(c).alias(c) for c in _LOAN),  # the loan's: one value each
    )
    labels = labels.select(
        "entry",
        "loan_id",
        F.negative("m.nr").alias("resp"),
        "m.key",
        "m.path",
        "m.mpath",
        "e_listed",
        *_LOAN,
    )
    labels = _cache(_unbeaten(labels, state.seen_loans, ["entry", "loan_id"], index))
    new = labels.select("entry", "loan_id", "resp")
    seen_loans = new if state.seen_loans is None else state.seen_loans.unionByName(new)
    return labels, replace(state, seen_loans=seen_loans)


#: the fields of a best origin, in the order that breaks ties between equal
#: responsibilities (after ``nr``, the negated responsibility, and ``old``: 0 for the best
#: so far, which a new origin must beat, 1 for a new one)
_BEST_FIELDS = ("loan", "borrower", "platform", "path", "mpath", "hops", "chain", "depth")


def _record_origins(
    state: _PassState, labels: DataFrame, index: _Index, reaches: DataFrame, depth: int
) -> _PassState:
    """Keep each entry's best origin: an origin loan of this layer that reaches the
    listing in time and beats the best so far (the best so far and this layer's origins
    in one grouping by entry)."""
    from pyspark.sql import functions as F

    col = F.col
    o = (
        labels.where(col("origin"))
        .join(
            index.side(reaches),
            (col("entry") == col("r_entry")) & (col("o_platform") == col("reach_platform")),
        )
        .where(col("known") <= col("deadline"))
    )
    found = o.select(
        "entry",
        F.struct(
            F.negative("resp").alias("nr"),
            F.lit(1).alias("old"),
            col("loan_id").alias("loan"),
            col("b_person").alias("borrower"),
            col("o_platform").alias("platform"),
            "path",
            "mpath",
            col("sharing_hops").alias("hops"),
            col("chain_index").alias("chain"),
            F.lit(depth).alias("depth"),
        ).alias("m"),
    )
    if state.best is not None:
        found = found.unionByName(
            state.best.select(
                "entry",
                F.struct(
                    F.negative("b_resp").alias("nr"),
                    F.lit(0).alias("old"),
                    *(col(f"b_{f}").alias(f) for f in _BEST_FIELDS),
                ).alias("m"),
            )
        )
    best = found.groupBy("entry").agg(F.min("m").alias("m"))
    best = _cache(
        best.select(
            "entry",
            F.negative("m.nr").alias("b_resp"),
            *(col(f"m.{f}").alias(f"b_{f}") for f in _BEST_FIELDS),
        )
    )
    return replace(state, best=best)


def _to_borrowers(state: _PassState, labels: DataFrame, index: _Index, rules: _Rules) -> _PassState:
    """The next frontier: from each loan label to the loan's borrower, best per
    (entry, person); each label carries its entry's best responsibility so far."""
    from pyspark.sql import functions as F

    col = F.col
    t = labels.withColumn("n_resp", (col("resp") * F.lit(rules.chain_factor)) * col("b_mf"))
    if state.best is None:
        t = t.withColumn("b_resp", F.lit(-1.0))
    else:
        best = index.side(state.best.select("entry", "b_resp"))
        t = t.join(best, "entry", "left").withColumn(
            "b_resp", F.coalesce(col("b_resp"), F.lit(-1.0))
        )
    t = t.where(col("n_resp") > col("b_resp"))
    t = _unbeaten(
        t.drop("resp").withColumnRenamed("n_resp", "resp"),
        state.seen_persons.withColumnRenamed("person", "b_person"),
        ["entry", "b_person"],
        index,
    )
    nxt = t.groupBy("entry", "b_person").agg(
        F.min(F.struct(F.negative("resp").alias("nr"), "key", "loan_id", "path", "mpath")).alias(
            "m"
        ),
        F.max("e_listed").alias("e_listed"),  # the entry's: one value each
        F.max("b_resp").alias("b_resp"),
    )
    frontier = _cache(
        nxt.select(
            "entry",
            col("b_person").alias("person"),
            F.negative("m.nr").alias("resp"),
            F.concat(col("m.key"), F.array(col("m.loan_id"), col("b_person"))).alias("key"),
            col("m.path").alias("path"),
            col("m.mpath").alias("mpath"),
            "e_listed",
            "b_resp",
        )
    )
    seen_persons = state.seen_persons.unionByName(frontier.select("entry", "person", "resp"))
    return replace(state, frontier=frontier, seen_persons=seen_persons)
