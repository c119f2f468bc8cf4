"""The service's logs: JSON lines on stderr, one per request (docs/service.md, Logs)."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from ..facts.resident_id import mask_ids_in

__all__ = ["LOGGER", "JsonLines", "JsonLinesHandler", "json_log", "log"]

#: the service's logger (its name is the one the log lines have always carried)
LOGGER = "spillover.service.app"

log = logging.getLogger(LOGGER)


def json_log(record: dict[str, Any]) -> None:
    """Write ``record`` as one compact JSON line of the service's log.

    When the service's logger writes to one :class:`JsonLinesHandler` only (as
    ``spillover serve`` sets it up), the line goes straight to its stream: the same
    line as through :mod:`logging` (whose filters and formatter keep a JSON line as it
    is), without a log record per request."""
    line = json.dumps(record, separators=(",", ":"))
    handlers = log.handlers
    if (
        len(handlers) == 1
        and type(handlers[0]) is JsonLinesHandler
        and log.isEnabledFor(logging.INFO)
        and handlers[0].write_line(line)
    ):
        return
    log.info(line)


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose JSON lines can also be written without a log record
    (:meth:`write_line`)."""

    def write_line(self, line: str) -> bool:
        """Write the JSON line ``line`` as :meth:`emit` would write a record whose
        message it is; False (nothing written) when the stream fails (then the caller
        logs it the usual way, which reports the failure as :mod:`logging` does)."""
        if self.level > logging.INFO:
            return False
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line + self.terminator)
                self.flush()
            except Exception:
                return False
        return True


class JsonLines(logging.Formatter):
    """Log records as JSON lines; a record whose message is JSON already is kept as is."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        message = record.getMessage()
        if message.startswith("{"):
            return message
        # uvicorn's own messages (started, stopping) carry no personal data; any other
        # message text might carry a name, a phone or an ID number and is left out
        out: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": "log",
        }
        if (record.name.startswith("uvicorn") or record.name == LOGGER) and not record.exc_info:
            out["message"] = mask_ids_in(message)
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = type(record.exc_info[1]).__name__
        suppressed = getattr(record, "suppressed", None)
        if suppressed:
            out["suppressed"] = suppressed  # lines like this one held back (RateLimit)
        return json.dumps(out, ensure_ascii=False)
