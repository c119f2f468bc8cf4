"""The service's logs: JSON lines on stderr, one per request (docs/service.md, Logs)."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from ..facts.resident_id import mask_ids_in

__all__ = ["LOGGER", "JsonLines", "json_log", "log"]

#: the service's logger (its name is the one the log lines have always carried)
LOGGER = "spillover.service.app"

log = logging.getLogger(LOGGER)


def json_log(record: dict[str, Any]) -> None:
    """Write ``record`` as one compact JSON line of the service's log."""
    log.info(json.dumps(record, separators=(",", ":")))


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
