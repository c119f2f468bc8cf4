"""What a Spark step keeps (cached frames, local checkpoints), written down so that it can
be released when the step ends.

A cached DataFrame stays in the session's cache manager, and a local checkpoint's blocks
in the block manager, until someone releases them: a session that runs many audits (the
tests' shared session, a service) would otherwise hold every table and layer of every
audit it ran. :func:`cache` and :func:`checkpoint` are ``df.cache()`` and
``df.localCheckpoint()``; inside ``with Kept() as kept:`` they also write the frame down,
and leaving the block unpersists every one of them (blocking: the blocks are gone when the
block ends). Outside a block they keep as Spark does (``audit --engine spark``: one audit
per session, released when it stops).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - types only
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["Kept", "cache", "checkpoint", "held_rdds"]


class Kept:
    """The frames cached and the checkpoints made since the block began (module doc)."""

    def __init__(self) -> None:
        self._cached: list[DataFrame] = []
        self._rdds: list[Any] = []  # the JVM RDDs of the local checkpoints
        self._token: Token[Kept | None] | None = None

    def cache(self, df: DataFrame) -> DataFrame:
        """``df.cache()``, written down."""
        out = df.cache()
        self._cached.append(out)
        return out

    def checkpoint(self, df: DataFrame) -> DataFrame:
        """``df.localCheckpoint()`` (computed now, its plan cut short), written down."""
        out = df.localCheckpoint()
        # the checkpoint's frame reads one RDD (its plan: LogicalRDD): the blocks to free
        self._rdds.append(out._jdf.queryExecution().analyzed().rdd())
        return out

    def release(self) -> None:
        """Unpersist every frame and checkpoint written down (blocking), once."""
        cached, rdds = self._cached, self._rdds
        self._cached, self._rdds = [], []
        for df in cached:
            df.unpersist(blocking=True)
        for rdd in rdds:
            rdd.unpersist(True)

    @contextmanager
    def active(self) -> Iterator[Kept]:
        """A block in which :func:`cache` and :func:`checkpoint` write down here, released
        only by :meth:`release` (what a step gives back outlives its block)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def __enter__(self) -> Kept:
        self._token = _CURRENT.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
        self.release()


#: the innermost ``with Kept()`` block of this thread (or task), if any
_CURRENT: ContextVar[Kept | None] = ContextVar("spillover_spark_kept", default=None)


def cache(df: DataFrame) -> DataFrame:
    """``df.cache()``, written down in the current :class:`Kept` block if any."""
    kept = _CURRENT.get()
    return df.cache() if kept is None else kept.cache(df)


def checkpoint(df: DataFrame) -> DataFrame:
    """``df.localCheckpoint()``, written down in the current :class:`Kept` block if any."""
    kept = _CURRENT.get()
    return df.localCheckpoint() if kept is None else kept.checkpoint(df)


def held_rdds(spark: SparkSession) -> dict[int, str]:
    """The RDDs the session holds (persisted: a cached frame once computed, a local
    checkpoint), by id, with their names; from Spark's own bookkeeping and its storage
    status (an RDD with blocks in the block manager): what a :class:`Kept` block must
    leave as it found it."""
    sc = spark.sparkContext._jsc.sc()
    out = {int(i.id()): str(i.name()) for i in sc.getRDDStorageInfo()}
    persistent = spark.sparkContext._jsc.getPersistentRDDs()
    for key in persistent.keySet().toArray():
        out.setdefault(int(key), str(persistent.get(key).name()))
    return out
