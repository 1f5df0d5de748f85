"""The browser tests' harness: Playwright driving Debian's Chromium against pages served on a loopback port.

One launch, one sign-in, one screenshot folder (artifacts/screenshots/, gitignored), and waits polled from
Python: the pages' Content Security Policy forbids the string evaluation that Playwright's
`wait_for_function` polls with. An uncaught script error on any page a test opened fails that test.
The `browser` fixture (tests/api/conftest.py) yields a `Browser`; a module marks itself `needs_chromium`
so that it is skipped, before its fixtures start a site, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update")

needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None or importlib.util.find_spec("playwright") is None,
    reason=f"needs {CHROMIUM} (apt-get install chromium) and playwright",
)


@dataclass
class Browser:
    """A launched Chromium; every page it opens reports its script errors into `errors`."""

    chromium: Any  # playwright.sync_api.Browser
    errors: list[str] = field(default_factory=list)

    def page(self, *, height: int = 768, timeout_ms: int = 15_000) -> Any:
        page = self.chromium.new_page(viewport={"width": 1366, "height": height})
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.set_default_timeout(timeout_ms)
        return page

    def signed_in(self, url: str, username: str, password: str, **options: int) -> Any:
        """A new page signed in through the login form, at the page the user lands on."""
        page = self.page(**options)
        page.goto(f"{url}/login")
        fill(page, "form", {"username": username, "password": password})
        page.click("button[type=submit]")
        page.wait_for_url(lambda at: "/login" not in at)
        return page


@contextlib.contextmanager
def launched() -> Iterator[Browser]:
    """Chromium for one test; fails the test after it for any script error on its pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = Browser(playwright.chromium.launch(executable_path=CHROMIUM, args=list(ARGS)))
        try:
            yield browser
        finally:
            browser.chromium.close()
    assert not browser.errors, f"script errors: {browser.errors}"


def fill(page: Any, form: str, fields: Mapping[str, str]) -> None:
    """Type into the named fields of a form (inputs, text areas), in order."""
    for name, value in fields.items():
        page.fill(f"{form} [name='{name}']", value)


def start_destruction(page: Any, item: str, station: str, witness: str, witness_password: str) -> None:
    """On the destruction page: choose the item and the station, the witness signs, run."""
    page.check(f"input[name=item][value='{item}']")
    page.select_option("#station", station)
    page.fill("#witness", witness)
    page.fill("#witness-password", witness_password)
    page.click("#run-form button[type=submit]")


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def wait_until(condition: Callable[[], Any], timeout_s: float = 15.0, interval_s: float = 0.1) -> Any:
    """Poll `condition` from Python until it is truthy; its last value (falsy on timeout) for the caller's assert."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval_s)
    return value
