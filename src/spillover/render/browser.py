"""Open a page in headless Chromium and wait until it has drawn, then read it back.

``chromium --screenshot`` shoots when the page's ``load`` event fires; a page that
draws afterwards (the neighborhood view draws its graph into a canvas once its
JavaScript has laid it out) may be shot blank, and ``--timeout`` does not delay the
shot. :func:`open_page` drives the browser over the DevTools protocol instead
(``--remote-debugging-pipe``: JSON messages on file descriptors 3 and 4, no port and
no extra library), waits until a JavaScript expression of the caller's gives the same
non-empty value twice in a row, and only then reads the page, its console and a
screenshot. What the page is drawn with is Debian's ``chromium``, unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpilloverError

__all__ = ["CHROMIUM", "PAGE_LOADED", "Page", "canvas_drawn", "open_page"]

#: the browser pages are drawn in (Debian's package; a launcher script)
CHROMIUM = "/usr/bin/chromium"

#: seconds the browser may take to answer one command
_ANSWER_WITHIN = 60.0

#: ready once the document and everything it loads are in
PAGE_LOADED = "document.readyState === 'complete'"


def canvas_drawn(selector: str) -> str:
    """A ``ready`` expression: the 2D canvas ``selector`` names has drawn something.

    Its value is a digest of the pixels drawn, so that two polls give the same value
    only once a layout has come to rest. The canvas must be one its page draws on in
    2D: asking a canvas for a 2D context claims it, so every other canvas is left alone.

    >>> "nvl-c2d-canvas" in canvas_drawn('canvas[data-testid="nvl-c2d-canvas"]')
    True
    """
    return _CANVAS_DRAWN.replace("SELECTOR", json.dumps(selector))


_CANVAS_DRAWN = """(() => {
  const canvas = document.querySelector(SELECTOR);
  if (document.readyState !== 'complete' || !canvas || !canvas.width || !canvas.height) return '';
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0, painted = 0;
  for (let i = 3; i < pixels.length; i += 4) {
    if (pixels[i] !== 0) {
      painted++;
      hash = (hash * 31 + pixels[i - 3] * 7 + pixels[i - 2] * 3 + pixels[i - 1] + i) | 0;
    }
  }
  return painted === 0 ? '' : painted + ':' + hash;
})()"""


@dataclass(frozen=True)
class Page:
    """What a page showed once it was ready."""

    #: the document as it stood (``outerHTML``: what ``--dump-dom`` prints)
    dom: str
    #: the console's messages, ``"level: text"``
    console: tuple[str, ...]
    #: uncaught exceptions, as the console reports them
    errors: tuple[str, ...]
    #: the window as a PNG
    png: bytes
    #: seconds from navigating to ready
    ready_after: float
    #: the value the ``ready`` expression held still at
    ready_value: Any


def open_page(
    page: str | Path,
    *,
    ready: str = PAGE_LOADED,
    window: tuple[int, int] = (1200, 800),
    timeout: float = 120.0,
    poll: float = 0.25,
    chromium: str = CHROMIUM,
) -> Page:
    """Open ``page`` (a file's path, or a URL such as ``file:///...``) in headless Chromium with no network, wait until
    the JavaScript expression ``ready`` gives the same truthy value on two polls
    ``poll`` seconds apart, then return the document, the console and a screenshot.

    Raises :class:`SpilloverError` when Chromium is missing, exits, or the page is not
    ready within ``timeout`` seconds.
    """
    if not Path(chromium).exists():
        raise SpilloverError(f"{chromium} is missing: apt-get install chromium")
    url = page if isinstance(page, str) and "://" in page else Path(page).resolve().as_uri()
    with (
        tempfile.TemporaryDirectory(prefix="spillover-chromium-") as scratch,
        _Browser(chromium, Path(scratch), window) as browser,
    ):
        return browser.read(url, ready, timeout=timeout, poll=poll)


class _Browser:
    """One headless Chromium spoken to over ``--remote-debugging-pipe``."""

    def __init__(self, chromium: str, scratch: Path, window: tuple[int, int]) -> None:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # the browser reads commands on fd 3 and answers on fd 4; bash puts them there
        # (copies at 10 and above, so that placing one cannot overwrite the other)
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r, from_browser_w)]
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)
        flags = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            # no network: every request would go to a proxy that is not there
            "--proxy-server=127.0.0.1:9",
            "--remote-debugging-pipe",
            f"--user-data-dir={scratch / 'profile'}",
            f"--window-size={window[0]},{window[1]}",
            "about:blank",
        ]
        # its log to a file: a pipe nobody drains would stop the browser once full
        self._log = scratch / "chromium.log"
        place = f'exec "$0" "$@" 3<&{ends[0]} 4>&{ends[1]}'
        try:
            with self._log.open("wb") as log:
                self._process = subprocess.Popen(
                    ["/bin/bash", "-c", place, chromium, *flags],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    pass_fds=ends,
                )
        finally:
            for fd in ends:
                os.close(fd)
        self._send_to = os.fdopen(to_browser_w, "wb")
        self._receive_from = from_browser_r
        self._buffer = b""
        self._last_id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> _Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(SpilloverError, OSError):
            self._call("Browser.close")
        self._send_to.close()
        os.close(self._receive_from)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def read(self, url: str, ready: str, *, timeout: float, poll: float) -> Page:
        """Navigate to ``url``, wait for ``ready`` to hold still, read the page."""
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime.enable", "Page.enable"):
            self._call(domain, session)
        started = time.monotonic()
        self._call("Page.navigate", session, url=url)
        last: Any = None
        while True:
            value = self._evaluate(session, ready)
            if value and value == last:
                break
            if time.monotonic() - started > timeout:
                raise SpilloverError(
                    f"{url} was not ready within {timeout:g} s (the last value of the "
                    f"expression: {str(value)[:200]!r})"
                )
            last = value
            time.sleep(poll)
        ready_after = time.monotonic() - started
        dom = self._evaluate(session, "document.documentElement.outerHTML")
        shot = self._call("Page.captureScreenshot", session, format="png")["data"]
        console, errors = self._console()
        return Page(str(dom), console, errors, base64.b64decode(shot), ready_after, value)

    def _evaluate(self, session: str, expression: str) -> Any:
        answer = self._call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise SpilloverError(f"the page's expression raised: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def _console(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        console: list[str] = []
        errors: list[str] = []
        for event in self._events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]
                )
                console.append(f"{params['type']}: {text}")
            elif event.get("method") == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(str(details.get("exception", {}).get("description", details["text"])))
        return tuple(console), tuple(errors)

    def _call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        try:
            self._send_to.write(json.dumps(message).encode() + b"\0")
            self._send_to.flush()
        except BrokenPipeError:
            raise SpilloverError(f"chromium exited: {self._stderr_tail()}") from None
        while True:
            answer = self._next_message()
            if answer.get("id") == self._last_id:
                if "error" in answer:
                    raise SpilloverError(f"chromium refused {method}: {answer['error']}")
                return answer.get("result", {})
            self._events.append(answer)

    def _next_message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            readable, _, _ = select.select([self._receive_from], [], [], _ANSWER_WITHIN)
            if not readable:
                raise SpilloverError(f"chromium gave no answer within {_ANSWER_WITHIN:g} s")
            chunk = os.read(self._receive_from, 1 << 16)
            if not chunk:
                raise SpilloverError(f"chromium exited: {self._stderr_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def _stderr_tail(self) -> str:
        self._process.poll()
        return self._log.read_bytes().decode(errors="replace")[-2000:]
