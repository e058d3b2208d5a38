"""Fixtures of the dashboard's browser tests: one chromium per module (Playwright driving
Debian's /usr/bin/chromium), a fresh context (storage, sessionStorage) per dashboard opened,
and the screenshot folder (`SWAPGATE_SCREENSHOTS`, else one under pytest's temporary
directory)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Error, sync_playwright

from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS_ENV, VIEWPORT, WAIT_MS, Dashboard


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing; the dashboard tests drive it — install it: apt-get install chromium"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "ui-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def open_dashboard(browser: Browser, screenshots: Path) -> Iterator[Callable[[str], Dashboard]]:
    """Open the dashboard of the swapgate at a URL in a new context; closed after the test."""
    contexts: list[BrowserContext] = []

    def open_at(url: str) -> Dashboard:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        return Dashboard(context.new_page(), url, screenshots)

    yield open_at
    for context in contexts:
        with contextlib.suppress(Error):  # the browser is gone already: nothing to close
            context.close()
