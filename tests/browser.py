"""Headless Chromium for the tests, driven with the standard library only.

Debian's `chromium` is driven through `chromedriver`'s W3C WebDriver HTTP API: no extra
dependency, and no tool that could download a browser or driver. Tests that need it skip without
them, except in CI (CI=true), where they fail. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
MISSING = [name for name, path in (("chromium", BROWSER), ("chromedriver", DRIVER)) if not path]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NO_BROWSER = f"{' and '.join(MISSING)} not installed (Debian: apt-get install chromium chromium-driver)"
# skip a browser test before any set-up, except in CI, where the test fails instead
needs_browser = pytest.mark.skipif(bool(MISSING) and not IN_CI, reason=NO_BROWSER)

BROWSER_ARGS = [
    "--headless=new",
    "--no-sandbox",  # root in containers and CI
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1400,1000",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]

T = TypeVar("T")


def require_browser() -> tuple[str, str]:
    """The browser and driver paths; fails (in CI, where `needs_browser` does not skip) without them."""
    if MISSING or not BROWSER or not DRIVER:
        pytest.fail(f"CI=true but {NO_BROWSER}; `make test` installs them")
    return BROWSER, DRIVER


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0, until: float = math.inf
) -> T:
    """Call `probe` until it returns something other than None; fail naming `what` after `timeout`
    seconds or at the monotonic time `until`, whichever comes first."""
    deadline = min(time.monotonic() + timeout, until)
    timeout = max(deadline - time.monotonic(), 0.0)
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except OSError as exc:  # connection refused or reset, HTTP errors (URLError), time-outs
            last, value = exc, None
        if value is not None:
            return value
        time.sleep(interval)
    pytest.fail(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last!r})" if last else "")
    )


def http_json(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
    """One JSON request; the decoded JSON reply (None for an empty body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group (a graceful shutdown of every child), SIGKILL it after `grace`."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers left in the group
    process.wait(timeout=10)


@contextmanager
def run_process(args: list[str], log: Path, **kwargs: Any) -> Iterator[subprocess.Popen]:
    """A subprocess in its own process group, output in `log`, always stopped afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        try:
            yield process
        finally:
            stop(process)


class WebDriver:
    """Just enough of the W3C WebDriver protocol (chromedriver) for the tests."""

    def __init__(self, driver_url: str, browser: str, profile: Path) -> None:
        options = {"binary": browser, "args": [*BROWSER_ARGS, f"--user-data-dir={profile}"]}
        timeouts = {"pageLoad": 30_000, "script": 10_000}
        capabilities = {
            "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options, "timeouts": timeouts}
        }
        reply = http_json("POST", f"{driver_url}/session", {"capabilities": capabilities}, timeout=60)
        self.session = f"{driver_url}/session/{reply['value']['sessionId']}"

    def get(self, url: str) -> None:
        """Navigate; returns once the page has loaded (the default page-load strategy)."""
        http_json("POST", f"{self.session}/url", {"url": url}, timeout=60)

    def script(self, source: str, *args: Any) -> Any:
        return http_json("POST", f"{self.session}/execute/sync", {"script": source, "args": list(args)})[
            "value"
        ]

    def set_window_size(self, width: int, height: int) -> None:
        """Resize the window, e.g. to the page's height before a whole-page screenshot."""
        http_json("POST", f"{self.session}/window/rect", {"width": width, "height": height})

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(http_json("GET", f"{self.session}/screenshot")["value"]))
        return path

    def quit(self) -> None:
        http_json("DELETE", self.session, timeout=15)


@contextmanager
def browser(tmp_path: Path, browser: str, driver: str) -> Iterator[WebDriver]:
    """A chromedriver on a free loopback port and one headless Chromium session, both stopped after."""
    port = free_port()
    # chromedriver accepts local connections only unless --allowed-ips is given
    args = [driver, f"--port={port}", f"--log-path={tmp_path / 'chromedriver.log'}"]
    with run_process(args, tmp_path / "chromedriver.out"):
        url = f"http://127.0.0.1:{port}"
        wait_for(
            "chromedriver",
            lambda: http_json("GET", f"{url}/status", timeout=5)["value"]["ready"] or None,
            20,
            0.2,
        )
        session = WebDriver(url, browser, tmp_path / "chromium-profile")
        try:
            yield session
        finally:
            session.quit()
