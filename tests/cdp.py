"""Drive a real headless chromium through the Chrome DevTools Protocol (keys, page state, reloads).

Uses the ``websockets`` package (a Prefect dependency) and Debian's ``chromium``; no browser is
downloaded. :class:`Browser` starts chromium on a free debugging port, attaches to its page and
sends CDP commands; events are read and dropped, but those of the methods named in :meth:`keep`.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from test_report import chromium_binary

# Key name -> (key, code, windowsVirtualKeyCode) for Input.dispatchKeyEvent.
_KEYS = {
    "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37),
    "ArrowRight": ("ArrowRight", "ArrowRight", 39),
    "Backspace": ("Backspace", "Backspace", 8),
    "Tab": ("Tab", "Tab", 9),
    "Enter": ("Enter", "Enter", 13),
    "Space": (" ", "Space", 32),
    "Escape": ("Escape", "Escape", 27),
}
# The text a key types (what makes Enter or Space press a focused button).
_TEXT = {"Enter": "\r", "Space": " "}


class Browser:
    """A headless chromium with one page, driven over CDP; use as a context manager."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.process: subprocess.Popen | None = None
        self.socket = None
        self._next_id = 0
        self._kept: dict[str, list[dict]] = {}

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [
                chromium_binary(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not open its debugging port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            pages = [target for target in json.load(reply) if target["type"] == "page"]
        self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=20)
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(self, *exc) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)

    def send(self, method: str, **params) -> dict:
        """Send one command and return its result (raises on a CDP error)."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("method") in self._kept:
                self._kept[message["method"]].append(message["params"])
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def keep(self, method: str) -> None:
        """Keep the events of ``method`` (e.g. ``Fetch.requestPaused``) for :meth:`events`."""
        self._kept.setdefault(method, [])

    def events(self, method: str) -> list[dict]:
        """The parameters of the events of ``method`` received so far (see :meth:`keep`), taken."""
        self.evaluate("0")  # a round trip: reads the events sent before its answer
        taken, self._kept[method] = self._kept[method], []
        return taken

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaits promises)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 30.0):
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None  # the page is loading
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def press(self, key: str, repeats: int = 0, interval: float = 0.033) -> None:
        """Press and release one key (a letter or a name in ``_KEYS``) as a user would; with ``repeats``,
        hold it down that long: that many auto-repeated key downs (``event.repeat``), ``interval``
        seconds apart, before the key up."""
        name, code, virtual = _KEYS[key] if key in _KEYS else (key, f"Key{key.upper()}", ord(key.upper()))
        text = {"text": key} if len(key) == 1 else {"text": _TEXT[key]} if key in _TEXT else {}
        down = {"key": name, "code": code, "windowsVirtualKeyCode": virtual, **text}
        self.send("Input.dispatchKeyEvent", type="keyDown", **down)
        for _ in range(repeats):
            time.sleep(interval)
            self.send("Input.dispatchKeyEvent", type="keyDown", autoRepeat=True, **down)
        self.send("Input.dispatchKeyEvent", type="keyUp", key=name, code=code, windowsVirtualKeyCode=virtual)

    def set_width(self, width: int, height: int = 900) -> None:
        """Lay the page out as in a window ``width`` CSS pixels wide (a phone, a tablet, a split screen)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", **metrics)

    def set_phone(self, width: int = 390, height: int = 844, scale: float = 3.0) -> None:
        """Lay the page out as a phone ``width`` CSS pixels wide does (a mobile viewport: a page without a
        ``viewport`` meta tag is laid out 980 px wide and shrunk)."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": True}
        self.send("Emulation.setDeviceMetricsOverride", **metrics)

    def click(self, selector: str) -> None:
        """Scroll to the element ``selector`` names and click its centre with the mouse, as a user does."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({selector!r});"
            " e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
