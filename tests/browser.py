"""A real headless Chromium for the tests, driven through the DevTools protocol on a pipe.

``render(page, screenshot)`` opens a local HTML file in ``/usr/bin/chromium`` (Debian's
package), records every request the page makes, every console message and uncaught
error, and saves a PNG screenshot of the whole page. The protocol runs over
``--remote-debugging-pipe`` (file descriptors 3 and 4: JSON messages ended by a NUL
byte), so no port is opened and nothing but the standard library is needed.

Run as a script to take a screenshot: ``python tests/browser.py page.html shot.png``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# The flags that work on a closed network: without the background-networking ones,
# Chromium keeps trying Google's hosts at start-up.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
)


def chromium_path() -> str | None:
    """Return the Chromium executable, or ``None`` if it is not installed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


@dataclass
class Rendered:
    """What the browser saw: requests, console messages, errors, the page's size."""

    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    title: str = ""
    width: int = 0
    height: int = 0
    text: str = ""

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but the page itself and inline ``data:`` URIs."""
        return [u for u in self.requests if not u.startswith(("file://", "data:", "about:"))]

    @property
    def console_errors(self) -> list[str]:
        return [text for level, text in self.console if level in ("error", "assert")]


class _Pipe:
    """DevTools protocol messages over Chromium's pipe (NUL-terminated JSON)."""

    def __init__(self, process: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.process = process
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:  # fmt: skip
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit {self.process.poll()})")
                self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)


def render(page: Path, screenshot: Path | None = None, width: int = 1280) -> Rendered:
    """Open ``page`` in headless Chromium; record what it did; save a full-page screenshot."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("Chromium is not installed (apt-get install -y chromium)")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="titanicml-chromium-")

    def child_fds() -> None:  # the protocol's descriptors: 3 reads, 4 writes
        reads, writes = os.dup(to_browser_r), os.dup(from_browser_w)  # above 4: no clash
        os.dup2(reads, 3)
        os.dup2(writes, 4)

    process = subprocess.Popen(
        [executable, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
         f"--window-size={width},900", "about:blank"],
        preexec_fn=child_fds, pass_fds=(3, 4),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(process, to_browser_w, from_browser_r)
    seen = Rendered()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime", "Log"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                  session=session)  # fmt: skip
        pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        metrics = pipe.send("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        seen.width, seen.height = int(size["width"]), int(size["height"])
        evaluated = pipe.send(
            "Runtime.evaluate",
            {"expression": "JSON.stringify([document.title, document.body.innerText])",
             "returnByValue": True},
            session=session,
        )  # fmt: skip
        seen.title, seen.text = json.loads(evaluated["result"]["value"])
        if screenshot is not None:
            shot = pipe.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True,
                 "clip": {"x": 0, "y": 0, "width": seen.width, "height": seen.height,
                          "scale": 1}},
                session=session, timeout=60,
            )  # fmt: skip
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        pipe.send("Browser.close")
    finally:
        _collect(pipe.events, seen)
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        shutil.rmtree(profile, ignore_errors=True)
    return seen


def _collect(events: list[dict[str, Any]], seen: Rendered) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            seen.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            seen.console.append((params["type"], text))
        elif method == "Log.entryAdded":
            entry = params["entry"]
            seen.console.append((entry["level"], f"{entry.get('url', '')}: {entry['text']}"))
        elif method == "Runtime.exceptionThrown":
            seen.errors.append(params["exceptionDetails"].get("text", "exception"))


if __name__ == "__main__":
    result = render(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({"title": result.title, "size": [result.width, result.height],
                      "external_requests": result.external_requests,
                      "console": result.console, "errors": result.errors}))  # fmt: skip
