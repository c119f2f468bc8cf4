"""How large loads and audits take memory (:mod:`spillover.memory`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

import spillover.connect
from spillover.connect import open_folder
from spillover.examples import jiang_case_path


def test_kept_heap_is_glibcs_only():
    import platform

    import numpy as np

    from spillover.memory import kept_heap

    with kept_heap() as kept:
        big = np.ones(1 << 22)  # (32 MB: from the heap while inside, on glibc)
        del big
    assert kept == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


def test_small_pages_turns_huge_pages_off_and_back():
    """Inside ``small_pages`` the process asks for no transparent huge pages (Linux
    ``prctl``); on leaving, the setting is what it was before."""
    import ctypes
    import ctypes.util
    import platform

    from spillover.memory import small_pages

    if platform.system() != "Linux":
        with small_pages() as off:
            assert off is False
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    before = libc.prctl(42, 0, 0, 0, 0)
    with small_pages() as off:
        assert off is True and libc.prctl(42, 0, 0, 0, 0) == 1
        with small_pages() as again:  # (nested: already off, stays off)
            assert again is True
        assert libc.prctl(42, 0, 0, 0, 0) == 1
    assert libc.prctl(42, 0, 0, 0, 0) == before


def test_a_folder_is_read_and_indexed_in_small_pages(monkeypatch):
    """``open_folder`` (every ``--data`` command) reads the folder with transparent huge
    pages off (seen from inside the real read) and puts the setting back after."""
    if platform.system() != "Linux":
        pytest.skip("prctl is Linux's")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    before = libc.prctl(42, 0, 0, 0, 0)
    libc.prctl(41, 0, 0, 0, 0)  # (huge pages allowed before)
    seen: list[int] = []
    read = spillover.connect.read_columns

    def watched(*args, **kwargs):
        seen.append(libc.prctl(42, 0, 0, 0, 0))
        return read(*args, **kwargs)

    monkeypatch.setattr(spillover.connect, "read_columns", watched)
    try:
        backend = open_folder(jiang_case_path())
        assert seen == [1]
        assert libc.prctl(42, 0, 0, 0, 0) == 0
        assert backend.names(["person:jiang"]) == {"person:jiang": "Jiang (bakery owner)"}
    finally:
        libc.prctl(41, before, 0, 0, 0)


def test_the_numpy_audit_does_not_import_pandas(tmp_path):
    """pyarrow imports pandas at its first conversion of a Python value, to ask whether it
    is installed (a third of a second); ``spillover audit`` (numpy) answers that probe
    without the import, and pyarrow's own pandas functions still import it when called."""
    import subprocess
    import sys

    script = f"""
import sys
from spillover.cli import main
sys.argv = ["spillover", "audit", "--data", {str(jiang_case_path())!r}, "--out", {str(tmp_path / "a.csv")!r}]
try:
    main()
except SystemExit as exit:
    assert exit.code == 0, exit.code
assert "pandas" not in sys.modules
import pyarrow as pa
assert type(pa.table({{"a": [1]}}).to_pandas()).__name__ == "DataFrame"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "ok"
    assert (tmp_path / "a.csv").read_text(encoding="utf-8").count("\n") == 17


def test_no_pandas_probe_is_done_once():
    import subprocess
    import sys

    script = """
import sys
from spillover.memory import no_pandas_probe
assert no_pandas_probe() is True
assert no_pandas_probe() is True  # (pyarrow does not ask again)
import pyarrow as pa
pa.array([1])
assert "pandas" not in sys.modules
import pandas
assert no_pandas_probe() is False
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
