"""How a large load or audit takes memory: freed memory kept for reuse (:func:`kept_heap`),
and no transparent huge pages (:func:`small_pages`).

A 1M-people audit allocates and frees many large numpy arrays (tens to hundreds of MB
each, several GB in all). glibc's malloc gives every allocation above its mmap threshold
fresh pages from the kernel and returns them when freed, so each such array is paid
again in page faults (kernel time: a third of the audit's time on a 2-core VM). Inside
:func:`kept_heap` large allocations come from the heap and freed memory stays there for
the next array: the pages are faulted in once, up to the peak, and reused after. The
peak resident memory stays about the same (the heap is the same arrays' memory); it is
given back to the kernel (``malloc_trim``) on leaving.

Only glibc has these settings (``mallopt``); elsewhere :func:`kept_heap` does nothing.

:func:`small_pages` turns transparent huge pages off for the process while inside
(Linux ``prctl``). numpy asks for huge pages for every array of 4 MB or more
(``madvise``), and the kernel then zeroes 2 MB at each first touch; on a VM that hands
freed 2 MB blocks back to its host (free page reporting: the 1M audit's machine), each
such page is faulted in again from the host, and the zeroing was over half of the 1M
audit's CPU time (``clear_page_erms`` under ``do_huge_pmd_anonymous_page`` in
``perf``, docs/benchmarks.md). With 4 KB pages only the pages written are zeroed, and
freed ones stay in the guest.

:func:`no_pandas_probe` is about a process's start rather than its memory: pyarrow asks
once per process whether pandas is installed, by importing it, at its first conversion
of a Python value (``pa.array``, a scalar argument of a compute function): a third of a
second of pandas' import in every ``spillover audit``, which never hands pyarrow a
pandas object.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.abc
import platform
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

import pyarrow as pa

__all__ = ["KEEP_BYTES", "kept_heap", "no_pandas_probe", "small_pages"]

#: allocations below this size come from the heap, and up to this much freed memory at
#: the heap's top is kept (glibc's mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD)
KEEP_BYTES = 1 << 30

_PR_SET_THP_DISABLE = 41
_PR_GET_THP_DISABLE = 42
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: the mmap threshold set on leaving: where glibc's dynamic threshold settles once large
#: arrays were freed (its maximum on 64-bit systems; setting any value turns the dynamic
#: threshold off, so the start value, 128 KiB, would leave every array above it to fresh
#: pages), with the trim threshold the dynamic rule pairs with it (twice as large)
_AFTER_BYTES = 32 * 1024 * 1024


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def _linux_libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "prctl") else None


@contextmanager
def small_pages() -> Iterator[bool]:
    """No transparent huge pages for new memory of this process while inside (Linux;
    yields whether they are off). On leaving, the setting is put back as it was (pages
    already made stay as they are)."""
    libc = _linux_libc()
    before = libc.prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0) if libc is not None else -1
    if libc is None or before < 0:
        yield False
        return
    ok = before == 1 or libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
    try:
        yield ok
    finally:
        if before == 0:
            libc.prctl(_PR_SET_THP_DISABLE, 0, 0, 0, 0)


@contextmanager
def kept_heap() -> Iterator[bool]:
    """Keep freed memory for reuse while inside (glibc; yields whether it could).

    On leaving, the thresholds are set to those glibc's dynamic rule reaches in a
    process that freed large arrays (the dynamic rule stays off in this process), and
    the free memory is returned to the kernel. Hold the context manager while inside
    (``with``): a discarded one leaves at once."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)
    )
    try:
        yield ok
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _AFTER_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _AFTER_BYTES)
        libc.malloc_trim(0)


def no_pandas_probe() -> bool:
    """Answer pyarrow's probe for pandas "not installed" without importing pandas (returns
    whether pandas is still not imported: False when it already was; pyarrow asks once,
    so a second call changes nothing).

    For a process that hands pyarrow no pandas objects (the numpy audit: the CLI calls
    this): pyarrow then treats a pandas object like any other sequence, until one of its
    pandas functions (``to_pandas``, ``from_pandas``) imports pandas, which still works.
    The probe is pyarrow's first conversion of a Python value, made here while an import
    finder refuses pandas (taken out again at once)."""
    if "pandas" in sys.modules:
        return False
    refuse = _Refused("pandas")
    sys.meta_path.insert(0, refuse)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(refuse)
    return "pandas" not in sys.modules


class _Refused(importlib.abc.MetaPathFinder):
    """An import finder that finds one top-level package not installed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.split(".")[0] == self.name:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None
