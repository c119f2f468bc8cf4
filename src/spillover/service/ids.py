"""Random ids of the service (a request's ``X-Request-ID``, a check's ``check_id``): the
32 hexadecimal digits of a random (version 4) UUID, as ``uuid.uuid4().hex`` writes
them, from the same source (``os.urandom``), read 4 KiB at a time rather than 16 bytes
per id (a ``getrandom`` call and a ``UUID`` object per id)."""

import os
import threading

__all__ = ["new_id"]

#: bytes of randomness read at once (256 ids)
_CHUNK = 4096

#: the digit of a UUID's variant nibble (RFC 4122: its two high bits 10) for each digit
_VARIANT = {f"{d:x}": f"{8 | (d & 3):x}" for d in range(16)}

_lock = threading.Lock()
_digits = ""
_at = 0


def _forget() -> None:
    """After a fork: the child reads its own randomness."""
    global _digits, _at
    _digits, _at = "", 0


os.register_at_fork(after_in_child=_forget)


def new_id() -> str:
    """A random version 4 UUID's 32 hexadecimal digits (``uuid.uuid4().hex``'s form).

    >>> i = new_id(); len(i), i[12], i[16] in "89ab"
    (32, '4', True)
    """
    global _digits, _at
    with _lock:
        if _at >= len(_digits):
            _digits, _at = os.urandom(_CHUNK).hex(), 0
        s = _digits[_at : _at + 32]
        _at += 32
    # the version (4) and the variant, as uuid.UUID(bytes=..., version=4) sets them
    return f"{s[:12]}4{s[13:16]}{_VARIANT[s[16]]}{s[17:]}"
