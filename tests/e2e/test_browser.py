"""Issue 37 "Look", done when: Debian's headless Chromium, driven over the W3C WebDriver HTTP API by
chromedriver, looks at a real worker fed simulated traffic: the teams list, a team page with the spike
drawn above its band and the incident's cause, the incident's page, and a hostile team name shown as text.

No Python dependency of its own: chromedriver is spoken to with urllib. Screenshots are kept under
`var/screenshots/` (or `$SPENDWATCH_SCREENSHOTS`). Without the browser the test is skipped, naming the
packages: `apt-get install chromium chromium-driver`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import wait_for
from tests.e2e.test_e2e_page import HOSTILE, spiky_worker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BROWSERS, DRIVERS = ("chromium", "chromium-browser", "google-chrome"), ("chromedriver",)
INSTALL = "apt-get install chromium chromium-driver"


def found(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


class Browser:
    """A headless Chromium session over chromedriver's W3C WebDriver HTTP API (just what this test needs)."""

    def __init__(self, driver_url: str, binary: str) -> None:
        self.url = driver_url
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": binary, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                       "--window-size=1280,1400", "--lang=en"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            raise WebDriverError(json.loads(exc.read()).get("value", {})) from None

    def in_session(self, method: str, path: str, body: Any = None) -> Any:
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self.in_session("POST", "/url", {"url": url})

    def script(self, source: str, *args: Any) -> Any:
        return self.in_session("POST", "/execute/sync", {"script": source, "args": list(args)})

    def texts(self, css: str) -> list[str]:
        return self.script("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)

    def count(self, css: str) -> int:
        return int(self.script("return document.querySelectorAll(arguments[0]).length", css))

    def open_alert(self) -> str | None:
        """The text of a JavaScript alert() the page opened, or None (there must never be one)."""
        try:
            return str(self.in_session("GET", "/alert/text"))
        except WebDriverError as exc:
            if exc.value.get("error") == "no such alert":
                return None
            raise

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.in_session("GET", "/screenshot")))
        return path

    def quit(self) -> None:
        with contextlib.suppress(WebDriverError, OSError):
            self.in_session("DELETE", "")


class WebDriverError(Exception):
    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(f"{value.get('error')}: {str(value.get('message'))[:300]}")
        self.value = value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    binary, driver = found(BROWSERS), found(DRIVERS)
    if binary is None or driver is None:
        missing = " and ".join(name for name, path in (("chromium", binary), ("chromedriver", driver)) if not path)
        pytest.skip(f"{missing} not found: the browser test needs Debian's headless Chromium ({INSTALL})")
    port = free_port()
    log = open(tmp_path / "chromedriver.log", "wb")  # noqa: SIM115 - chromedriver writes to it while it runs
    process = subprocess.Popen([driver, f"--port={port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/status", timeout=2) as response:
                return bool(json.loads(response.read())["value"]["ready"])
        except OSError:
            return False

    try:
        wait_for(ready, timeout=30, what="chromedriver to answer")
        session = Browser(url, binary)
        try:
            yield session
        finally:
            session.quit()
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def screenshots() -> Path:
    folder = Path(os.environ.get("SPENDWATCH_SCREENSHOTS") or ROOT / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_browser_sees_the_teams_the_spike_above_its_band_the_incident_and_a_hostile_name_as_text(
        browser, screenshots, broker, topics, make_worker):  # the browser first: skipped before a broker starts
    worker, alert = spiky_worker(broker, topics, make_worker)
    key = alert["dedup_key"]

    browser.open(f"{worker.url}/")
    wait_for(lambda: "search" in browser.texts("table a") and HOSTILE in browser.texts("table a"), timeout=30,
             what="both teams listed")
    assert browser.texts("table a")[:2] == ["search", HOSTILE]  # largest spend first
    assert browser.open_alert() is None and browser.count("script") == 0
    browser.screenshot(screenshots / "teams.png")

    browser.script("[...document.querySelectorAll('table a')].find(a => a.textContent === 'search').click()")
    wait_for(lambda: browser.texts("h1") == ["search"], timeout=30, what="the team page")
    chart = "tr.endpoint:first-child svg, tr.endpoint svg"
    assert browser.count(f"{chart} .band") > 0 and browser.count(f"{chart} .above-band") > 0
    above = browser.script("""
        const dot = document.querySelector('.above-band'), band = dot.closest('svg').querySelector('.band');
        return [dot.getBoundingClientRect().top, band.getBoundingClientRect().top];""")
    assert above[0] < above[1]  # the spike's dot is drawn above its band's top
    assert browser.count(f'rect.incident[data-incident="{key}"]') == 1
    assert alert["cause"] in browser.texts("td.cause")
    browser.screenshot(screenshots / "team.png")

    browser.script(f"document.querySelector('a[href=\"/?incident={key}\"]').click()")
    wait_for(lambda: any(text.startswith("Incident") for text in browser.texts("h1")), timeout=30,
             what="the incident page")
    headings = browser.texts("h2")
    assert {"Windows around it", "Delivery (Slack, PagerDuty)", "Silences that hold it"} <= set(headings)
    assert alert["cause"] in browser.texts("span.cause") and browser.count(".above-band") > 0
    browser.screenshot(screenshots / "incident.png")

    browser.open(f"{worker.url}/?team={quote(HOSTILE, safe='')}")
    wait_for(lambda: browser.texts("h1") == [HOSTILE], timeout=30, what="the hostile team's page")
    assert browser.open_alert() is None and browser.count("script") == 0
    assert HOSTILE in browser.texts("td")
    browser.screenshot(screenshots / "hostile.png")
    assert all((screenshots / name).stat().st_size > 1000 for name in ("teams.png", "team.png", "incident.png",
                                                                         "hostile.png"))
