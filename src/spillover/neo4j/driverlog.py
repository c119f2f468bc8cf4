"""The Neo4j driver's log as one line per event, without importing the driver.

The CLI routes the driver's ``neo4j`` logger here once, before any command runs
(so ``spillover --help`` still does not import the driver).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["route_driver_logs"]


class _DriverLog(logging.Handler):
    """The driver's log records as ONE line each on a sink.

    Server notifications are dropped (the queries are written to raise none; what is
    left, such as "label does not exist" on an empty database, says nothing a user
    can act on), and a transaction retry (a deadlock between concurrent ingest
    batches, a server restarting) becomes one line with the error's code, not a dump.
    """

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("neo4j.notifications"):
            return
        if str(record.msg).startswith("Transaction failed and will be retried") and record.args:
            args = tuple(record.args) if isinstance(record.args, tuple) else ()
            delay = args[0] if args and isinstance(args[0], int | float) else 0.0
            error = args[1] if len(args) > 1 else None
            line = f"Neo4j transaction retried in {float(delay):.1f}s ({_reason(error)})"
        else:
            try:
                text = record.getMessage()
            except Exception:  # a malformed record must not break the command
                text = str(record.msg)
            line = f"Neo4j driver: {text}"
        line = " ".join(line.split())
        self.sink(line if len(line) <= 240 else line[:237] + "...")


def _reason(error: object) -> str:
    code = getattr(error, "code", None)
    if code:
        return str(code)
    return type(error).__name__ if isinstance(error, BaseException) else str(error)


def route_driver_logs(sink: Callable[[str], None]) -> None:
    """Send the driver's warnings to ``sink`` as one line each (see :class:`_DriverLog`)."""
    logger = logging.getLogger("neo4j")
    for handler in list(logger.handlers):
        if isinstance(handler, _DriverLog):
            logger.removeHandler(handler)
    logger.addHandler(_DriverLog(sink))
    logger.propagate = False
