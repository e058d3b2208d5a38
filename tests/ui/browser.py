"""Driving the dashboard in chromium: the browser's command line and one tab on a swapgate's
dashboard, which keeps the page's console errors and takes screenshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Locator, Page, ViewportSize
from playwright.sync_api import expect as page_expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_ENV = "SWAPGATE_SCREENSHOTS"
VIEWPORT: ViewportSize = {"width": 1360, "height": 820}
WAIT_MS = 15_000  # the longest anything on the page may take to show (a model start included)


@dataclass
class Dashboard:
    """One browser tab on one swapgate's dashboard."""

    page: Page
    url: str
    shots: Path
    problems: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def open(self, tab: str = "models") -> None:
        self.page.goto(f"{self.url}/ui#{tab}")

    def tab(self, name: str) -> None:
        self.page.click(f'#tabs [data-tab="{name}"]')
        page_expect(self.page.locator(f"#tab-{name}")).to_be_visible()

    def model_row(self, model: str) -> Locator:
        return self.page.locator(f'#models-table tr[data-model="{model}"]')

    def state_of(self, model: str) -> Locator:
        return self.model_row(model).locator(".c-state")

    def live(self) -> None:
        """Wait until the event stream is connected (the snapshot has been drawn)."""
        page_expect(self.page.locator("#live")).to_have_text("live", timeout=WAIT_MS)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def assert_no_problems(self, allowed: tuple[str, ...] = ()) -> None:
        unexpected = [p for p in self.problems if not any(a in p for a in allowed)]
        assert unexpected == []
