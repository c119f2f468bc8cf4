"""Pages read in headless Chromium once they have drawn (spillover.render.browser)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from spillover.errors import SpilloverError
from spillover.render.browser import CHROMIUM, PAGE_LOADED, canvas_drawn, open_page

#: a canvas that stays empty until 1.5 s after the page has loaded, then gets a red square
LATE_DRAWING = """<!doctype html><html><head><title>late</title></head>
<body style="margin:0;background:#fff">
<canvas id="c" width="200" height="200"></canvas>
<script>
window.addEventListener('load', () => setTimeout(() => {
  const g = document.getElementById('c').getContext('2d');
  g.fillStyle = '#ff0000';
  g.fillRect(50, 50, 100, 100);
  document.body.dataset.drawn = 'yes';
}, 1500));
</script></body></html>
"""


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the README's list)")
    return CHROMIUM


def _pixel(png: bytes, x: int, y: int) -> tuple[int, ...]:
    with Image.open(io.BytesIO(png)) as image:
        return tuple(image.convert("RGB").getpixel((x, y)))  # type: ignore[arg-type]


def test_a_canvas_drawn_after_load_is_read_once_drawn(chromium, tmp_path):
    page_file = tmp_path / "late.html"
    page_file.write_text(LATE_DRAWING, encoding="utf-8")
    page = open_page(page_file, ready=canvas_drawn("#c"), window=(400, 300), chromium=chromium)
    assert page.ready_after >= 1.5
    assert page.ready_value.startswith(f"{100 * 100}:")  # the square's pixels, nothing else
    assert 'data-drawn="yes"' in page.dom
    assert _pixel(page.png, 100, 100) == (255, 0, 0)
    assert _pixel(page.png, 10, 10) == (255, 255, 255)
    # what it replaces: Chromium's own --screenshot shoots at the load event, before the
    # square (--timeout does not delay the shot)
    shot = tmp_path / "shot.png"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--timeout=6000"]
    subprocess.run(
        [chromium, *flags, "--window-size=400,300", f"--screenshot={shot}", page_file.as_uri()],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert _pixel(shot.read_bytes(), 100, 100) == (255, 255, 255)


def test_a_page_that_never_draws_fails_with_the_last_value(chromium, tmp_path):
    page_file = tmp_path / "empty.html"
    page_file.write_text('<canvas id="c" width="50" height="50"></canvas>', encoding="utf-8")
    with pytest.raises(SpilloverError, match=r"was not ready within 2 s .*''"):
        open_page(page_file, ready=canvas_drawn("#c"), timeout=2, chromium=chromium)


def test_console_messages_and_uncaught_errors_are_kept(chromium, tmp_path):
    page_file = tmp_path / "noisy.html"
    page_file.write_text(
        "<script>console.log('hello', 42); console.error('bad thing');"
        "setTimeout(() => { throw new Error('boom'); }, 0);</script>",
        encoding="utf-8",
    )
    ready = f"({PAGE_LOADED}) && performance.now() > 500"
    page = open_page(page_file, ready=ready, chromium=chromium)
    assert page.console == ("log: hello 42", "error: bad thing")
    assert len(page.errors) == 1 and "Error: boom" in page.errors[0]


def test_the_page_has_no_network(chromium, tmp_path):
    page_file = tmp_path / "fetch.html"
    page_file.write_text(
        "<script>fetch('http://example.com/').then(() => { document.title = 'online'; },"
        " () => { document.title = 'offline'; });</script>",
        encoding="utf-8",
    )
    page = open_page(page_file, ready="document.title", chromium=chromium)
    assert page.ready_value == "offline"


def test_an_expression_that_raises_and_a_missing_browser_are_clear_errors(chromium, tmp_path):
    page_file = tmp_path / "plain.html"
    page_file.write_text("<p>plain</p>", encoding="utf-8")
    with pytest.raises(SpilloverError, match="the page's expression raised"):
        open_page(page_file, ready="no_such_name.x", chromium=chromium)
    # a path given as text, and the same page as a URL
    for page in (str(page_file), page_file.as_uri()):
        assert "<p>plain</p>" in open_page(page, chromium=chromium).dom
    with pytest.raises(SpilloverError, match="is missing: apt-get install chromium"):
        open_page(page_file, chromium=str(tmp_path / "no-chromium"))
