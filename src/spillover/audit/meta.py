"""What an audit file was made with: the sidecar ``AUDIT.meta.json`` beside ``AUDIT.csv``
or ``AUDIT.jsonl`` (docs/contract.md §4, an extension), and reading an audit file back.

The audit rows do not say the policy they were scored under; the sidecar does (its label,
name, version and digest), with the number of rows, so that a later comparison
(``spillover changes --before AUDIT.csv --after DIR``) can refuse an audit of another
policy instead of listing every entry as changed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..errors import SpilloverError
from ..files.write import atomic_file, restore
from ..policy import Policy
from ..version import __version__
from .rows import AUDIT_COLUMNS

__all__ = ["META_SUFFIX", "meta_path", "read_audit_file", "write_audit_meta"]

#: the sidecar's name: the audit file's name and this
META_SUFFIX = ".meta.json"


def meta_path(out: str | Path) -> Path:
    """The sidecar of the audit file ``out``: ``out`` + ``.meta.json``."""
    out = Path(out)
    return out.with_name(out.name + META_SUFFIX)


def write_audit_meta(out: str | Path, policy: Policy, rows: int) -> Path:
    """Write the sidecar of the audit file ``out`` (atomically): its policy and rows."""
    target = meta_path(out)
    meta = {
        "audit": Path(out).name,
        "rows": rows,
        "policy": policy.label,
        "policy_detail": {
            "name": policy.name,
            "version": policy.version,
            "digest": policy.digest,
        },
        "spillover_version": __version__,
    }
    with atomic_file(target, newline=None) as f:
        f.write(json.dumps(meta, indent=2) + "\n")
    return target


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row read from CSV text with the types of the JSONL rows."""
    out: dict[str, Any] = {k: (restore(v) if isinstance(v, str) else v) for k, v in row.items()}
    for key in ("origin_loan_id", "origin_borrower_id", "origin_platform_id"):
        out[key] = out[key] or None
    out["contamination"] = float(out["contamination"])
    out["responsibility"] = float(out["responsibility"]) if out["responsibility"] else None
    out["hops"] = int(out["hops"]) if out["hops"] not in ("", None) else None
    return out


def read_audit_file(path: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The sidecar and the rows (by entry id) of an audit file written by ``spillover
    audit``; an audit file without its sidecar, or not an audit file, is refused."""
    path = Path(path)
    meta_file = meta_path(path)
    if not meta_file.is_file():
        raise SpilloverError(
            f"{path}: no {meta_file.name} beside it says which policy this audit was made "
            "with (spillover audit writes it); audit the folder again"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        digest = str(meta["policy_detail"]["digest"])
    except (ValueError, KeyError, TypeError) as e:
        raise SpilloverError(f"{meta_file}: not an audit's sidecar ({e})") from None
    meta["policy_detail"]["digest"] = digest
    with path.open(encoding="utf-8", newline="") as f:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in f if line.strip()]
        else:
            rows = [_typed(r) for r in csv.DictReader(f)]
    missing = [c for c in AUDIT_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise SpilloverError(f"{path}: not an audit file (no column {', '.join(missing)})")
    return meta, {str(r["entry_id"]): r for r in rows}
