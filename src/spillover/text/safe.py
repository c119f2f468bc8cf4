"""Text that data cannot forge: what a name or a reason from the data may not do to output.

A name, a stated reason or an id comes from the data and may hold anything. In text
output (the CLI's ``--format text``, the remedy, the findings, the Markdown report) a
line feed in a name would start a line of its own (``verdict: OWN_CONDUCT ...``), a
carriage return or a backspace would overwrite what was printed, a bell or an escape
sequence would act on the terminal, and a bidi override (U+202E) would turn the rest of
the line around. :func:`printable` writes every such character as an escape
(``\\n``, ``\\r``, ``\\x07``, ``\\u202e``), so each line of output says only what
spillover wrote; ordinary text, Chinese included, is unchanged. In HTML a name is
isolated instead (``<bdi>``, :func:`isolated`): shown exactly, its direction kept
inside it. JSON keeps the exact strings (it escapes control characters itself). XML
(the GraphML view) cannot hold most C0 controls at all: :func:`xml_text` writes those
with the same escapes, and leaves every other character as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["FSI", "PDI", "isolated", "printable", "printable_lines", "xml_text"]

#: C0 and C1 controls and DEL, the line and paragraph separators, and the bidi
#: embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: what XML 1.0 cannot hold (the C0 controls but tab and line feed, U+FFFE, U+FFFF, lone
#: surrogates), and the carriage return, which a parser reads back as a line feed
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]")

#: FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: what ``<bdi>`` is in plain text
FSI, PDI = "\u2068", "\u2069"
_ISOLATES = re.compile("[\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    short = _SHORT.get(c)
    if short is not None:
        return short
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: str) -> str:
    """``text`` with every control, separator and bidi formatting character escaped.

    >>> printable("Xu Yan\\nverdict: OWN_CONDUCT\\r\\a")
    'Xu Yan\\\\nverdict: OWN_CONDUCT\\\\r\\\\x07'
    >>> printable("\\u202eJiang"), printable("江")
    ('\\\\u202eJiang', '江')
    """
    return _CONTROL.sub(_escape, text)


def printable_lines(lines: Iterable[str]) -> str:
    """Lines of output joined by line feeds, each made :func:`printable` (a line written
    for output holds no control character of its own)."""
    return "\n".join(printable(line) for line in lines)


def isolated(text: str) -> str:
    """``text`` between FSI and PDI, the marks an HTML page turns into ``<bdi>``...``</bdi>``;
    isolate marks of its own are escaped, so that the marks always pair."""
    return FSI + _ISOLATES.sub(_escape, text) + PDI


def xml_text(text: str) -> str:
    """``text`` as XML 1.0 can hold it and a parser gives it back: every character it
    cannot hold (a C0 control but tab and line feed; U+FFFE, U+FFFF, a lone surrogate)
    and the carriage return written as :func:`printable` writes it; the rest unchanged.

    >>> xml_text("Xu\\x01Yan\\r\\n江")
    'Xu\\\\x01Yan\\\\r\\n江'
    """
    return _NOT_XML.sub(_escape, text)
