"""The dashboard at /ui in a real browser against a real swapgate and fake model servers:
it loads cleanly under its Content-Security-Policy, follows the event stream (changes made
outside the page show up on it), and its buttons, logs, activity table, routes, queue,
playground and key prompt work."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.gateway import Swapgate, fake_cmd, start_swapgate
from tests.ui.browser import WAIT_MS, Dashboard

pytestmark = pytest.mark.integration

OpenDashboard = Callable[[str], Dashboard]
TABS = ("models", "activity", "logs", "routes", "queue", "playground", "events")
KEY = "sk-dashboard-test"
CSP_DIRECTIVES = (
    "default-src 'self'",
    "style-src 'self'",
    "script-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
)
TOKENS = 20  # alpha's answer: 20 words "alpha", one every 0.1 s
# A model whose server prints a line in bold green (and some markup) before it starts.
PAINT = "printf '\\033[1;32mpainted line\\033[0m <b>not markup</b>\\n'; exec " + fake_cmd("paint")


def config(extra: str = "") -> str:
    return f"""{extra}
models:
  alpha:
    cmd: {fake_cmd("alpha", say="alpha", tokens=TOKENS, token_interval=0.1)}
    name: Alpha (fake)
    ttl: 300
    vram: 4096
  bravo:
    cmd: {fake_cmd("bravo", say="bravo", tokens=8, token_interval=0.02)}
    ttl: 600
    vram: 2048
  paint:
    cmd: {json.dumps("sh -c " + shlex.quote(PAINT))}
  slow:
    cmd: {fake_cmd("slow", startup_delay=2)}
groups:
  pair:
    swap: false
    members: [alpha, bravo]
routes:
  - name: chat-ab
    match: {{model: chat}}
    split:
      - {{to: alpha, weight: 50}}
      - {{to: bravo, weight: 50}}
    sticky: header:X-User-Id
"""


@pytest.fixture
def gate() -> Iterator[Swapgate]:
    with start_swapgate(config()) as running:
        yield running


def raw_get(
    gate: Swapgate, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET exactly `path` (no redirects followed, no path clean-up): status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", gate.port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_files_are_served_from_a_fixed_list_with_strict_headers(gate: Swapgate) -> None:
    """/ui is the page under a strict CSP; its files have their types and ETags; names not
    in the folder (or climbing out of it) are 404; / redirects to /ui."""
    status, headers, body = raw_get(gate, "/ui")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert all(d in headers["content-security-policy"].split("; ") for d in CSP_DIRECTIVES)
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    assert b'<script type="module" src="/ui/main.js">' in body
    assert b"style=" not in body  # no inline styles: the CSP would refuse them
    assert raw_get(gate, "/ui/")[2] == body
    status, headers, _ = raw_get(gate, "/ui/main.js")
    assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert raw_get(gate, "/ui/style.css")[1]["content-type"] == "text/css; charset=utf-8"
    assert raw_get(gate, "/ui/main.js", {"If-None-Match": headers["etag"]})[0] == 304
    for bad in ("/ui/nope.js", "/ui/../pyproject.toml", "/ui/%2e%2e/app.py", "/ui/ui/main.js"):
        assert raw_get(gate, bad)[0] == 404, bad
    status, headers, _ = raw_get(gate, "/")
    assert (status, headers["location"]) == (302, "/ui")


def test_the_page_loads_without_errors_and_lists_every_model(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """From /, the page lists the configured models (all stopped) and every tab opens,
    with no console error and no CSP violation."""
    dash = open_dashboard(gate.url)
    dash.page.goto(gate.url + "/")
    expect(dash.page).to_have_url(gate.url + "/ui")
    dash.live()
    for model in ("alpha", "bravo", "paint", "slow"):
        expect(dash.state_of(model)).to_have_text("stopped")
    expect(dash.model_row("alpha")).to_contain_text("Alpha (fake)")
    expect(dash.model_row("alpha").locator(".c-memory")).to_have_text("4,096 MiB configured")
    for tab in TABS:
        dash.tab(tab)
    dash.assert_no_problems()


def test_load_and_unload_from_the_page_and_changes_made_elsewhere_show(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """Load makes the model ready on screen (pid, TTL countdown); Unload stops it; models
    loaded through the API outside the page show up, and Unload all stops them."""
    dash = open_dashboard(gate.url)
    dash.open()
    dash.live()
    alpha = dash.model_row("alpha")
    alpha.locator("button.load").click()
    expect(dash.state_of("alpha")).to_have_text("ready", timeout=WAIT_MS)
    assert gate.running()["alpha"]["state"] == "ready"
    expect(alpha.locator(".c-pid")).to_have_text(str(gate.running()["alpha"]["pid"]))
    expect(alpha.locator(".c-ttl")).to_have_text(re.compile(r"^4:5\d$|^5:00$"))
    dash.tab("events")
    expect(dash.page.locator("#events-list")).to_contain_text("alpha: stopped → starting")
    dash.tab("models")
    alpha.locator("button.unload").click()
    expect(dash.state_of("alpha")).to_have_text("stopped", timeout=WAIT_MS)
    assert "alpha" not in gate.running()

    for model in ("alpha", "bravo"):  # as a client would, not through the page
        assert gate.post(f"/api/models/load/{model}", timeout=30)[0] == 200
    expect(dash.state_of("alpha")).to_have_text("ready")
    expect(dash.state_of("bravo")).to_have_text("ready")
    dash.shot("models")
    dash.page.click("#unload-all")
    expect(dash.state_of("alpha")).to_have_text("stopped", timeout=WAIT_MS)
    expect(dash.state_of("bravo")).to_have_text("stopped", timeout=WAIT_MS)
    assert gate.running() == {}
    dash.assert_no_problems()


def test_requests_made_elsewhere_appear_in_the_activity_table(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """A request made with a plain HTTP client shows on top of the table at once, with the
    summary; the status and model filters and the CSV export work."""
    dash = open_dashboard(gate.url)
    dash.open("activity")
    dash.live()
    page = dash.page
    rows = page.locator("#activity-table tbody tr")
    expect(page.locator("#activity-empty")).to_be_visible()
    assert gate.chat("alpha")[0] == 200
    expect(rows).to_have_count(1)
    first = rows.first.locator("td")
    expect(first.nth(1)).to_have_text("alpha")  # model
    expect(first.nth(2)).to_have_text("alpha")  # backend
    expect(first.nth(4)).to_have_text("/v1/chat/completions")
    expect(first.nth(5)).to_have_text("200")
    expect(first.nth(10)).to_have_text(str(TOKENS))  # generated tokens
    expect(page.locator('#activity-summary [data-figure="requests"] dd')).to_have_text("1")

    assert gate.chat("nope")[0] == 404
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").nth(5)).to_have_text("404")  # newest first
    expect(page.locator('#activity-summary [data-figure="errors"] dd')).to_have_text("1")

    page.select_option("#activity-status", "error")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(1)).to_have_text("nope")
    expect(page.locator("#activity-csv")).to_have_attribute(
        "href", "/api/activity.csv?status=error"
    )
    page.select_option("#activity-status", "")
    page.select_option("#activity-model", "alpha")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(1)).to_have_text("alpha")
    with page.expect_download() as download:
        page.click("#activity-csv")
    lines = Path(download.value.path()).read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("id,")
    assert ",alpha," in lines[1]
    dash.assert_no_problems()


def test_logs_stream_a_models_output_with_its_colours(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """A model's output line arrives live, its ANSI colours as classes and its markup as
    text; choosing the model shows its lines alone, and new ones keep coming."""
    dash = open_dashboard(gate.url)
    dash.open("logs")
    dash.live()
    page = dash.page
    expect(page.locator("#log-status")).to_have_text("live")
    assert gate.post("/api/models/load/paint", timeout=30)[0] == 200
    line = page.locator("#log-view .line", has_text="painted line")
    expect(line).to_have_count(1)
    expect(line.locator(".src")).to_have_text("[paint]")
    expect(line.locator("span.fg-32.bold")).to_have_text("painted line")
    expect(line).to_contain_text("<b>not markup</b>")
    expect(page.locator("#log-view b")).to_have_count(0)

    page.select_option("#log-source", "paint")
    expect(page.locator("#log-view .line").first).to_have_text("painted line <b>not markup</b>")
    assert gate.chat("paint")[0] == 200  # the fake logs each request it serves
    expect(page.locator("#log-view")).to_contain_text("POST /v1/chat/completions")
    expect(page.locator("#log-view .src")).to_have_count(0)
    dash.shot("logs")
    dash.assert_no_problems()


def test_the_playground_streams_tokens_as_they_arrive(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """The answer grows on screen while it streams; then TTFT and tokens/s show."""
    dash = open_dashboard(gate.url)
    dash.open("playground")
    dash.live()
    page = dash.page
    page.select_option("#play-model", "alpha")
    page.fill("#play-input", "Say something")
    page.click("#play-send")
    expect(page.locator(".bubble.user .text")).to_have_text("Say something")
    reply = page.locator(".bubble.assistant .text")
    expect(reply).to_contain_text("alpha", timeout=WAIT_MS)
    partial = reply.inner_text().split()
    expect(page.locator("#play-stop")).to_be_enabled()  # still streaming after those words
    stats = page.locator("#play-stats")
    expect(stats).to_contain_text("tokens/s", timeout=WAIT_MS)
    assert 0 < len(partial) < TOKENS
    assert reply.inner_text().split() == ["alpha"] * TOKENS
    expect(stats).to_have_text(
        re.compile(rf"^TTFT [\d.]+ m?s · [\d.]+ tokens/s · {TOKENS} tokens · [\d.]+ m?s in all$")
    )
    dash.shot("playground")
    dash.assert_no_problems()


def test_routes_show_each_arm_and_every_tab_fills_with_traffic(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """Requests split between two arms: the Routes tab compares them side by side; the
    Models, Activity and Events tabs show the same traffic (screenshots of each)."""
    seen: dict[str, int] = {}
    for user in range(40):  # sticky users: both arms get some, whatever the hash says
        streamed = {"stream": True, "stream_options": {"include_usage": True}} if user % 2 else {}
        status, headers, _ = gate.chat("chat", headers={"X-User-Id": f"user-{user}"}, **streamed)
        assert status == 200
        arm = headers["x-swapgate-route"].partition("/")[2]
        seen[arm] = seen.get(arm, 0) + 1
        if len(seen) == 2 and sum(seen.values()) >= 8:
            break
    assert sorted(seen) == ["alpha", "bravo"]
    assert gate.chat("nope")[0] == 404

    dash = open_dashboard(gate.url)
    dash.open("routes")
    dash.live()
    table = dash.page.locator('table.route[data-route="chat-ab"]')
    expect(table.locator("thead th")).to_have_text(["", "all", "alpha", "bravo"])
    requests = table.locator("tbody tr").first.locator("td")
    expect(requests).to_have_text([str(sum(seen.values())), str(seen["alpha"]), str(seen["bravo"])])
    dash.shot("routes")
    dash.tab("models")
    expect(dash.state_of("alpha")).to_have_text("ready")
    expect(dash.model_row("alpha").locator(".c-ttl")).to_have_text(re.compile(r"^[45]:\d\d$"))
    dash.shot("tour-models")
    dash.tab("activity")
    expect(dash.page.locator("#activity-table tbody tr")).to_have_count(sum(seen.values()) + 1)
    dash.shot("activity")
    dash.tab("events")
    dash.page.check("#events-requests")
    assert gate.chat("chat", headers={"X-User-Id": "user-0"})[0] == 200
    expect(dash.page.locator('#events-list [data-kind="request"]')).to_have_count(1)
    dash.shot("events")
    dash.assert_no_problems()


def test_the_queue_tab_shows_requests_waiting_for_a_model(
    gate: Swapgate, open_dashboard: OpenDashboard
) -> None:
    """While a slow model starts, the request for it waits: the Queue tab shows it (and the
    tab's badge counts it) until the model is ready."""
    dash = open_dashboard(gate.url)
    dash.open("queue")
    dash.live()
    page = dash.page
    expect(page.locator("#queue-empty")).to_be_visible()
    answers: list[int] = []
    client = threading.Thread(target=lambda: answers.append(gate.chat("slow")[0]))
    client.start()
    try:
        row = page.locator('#queue-table tr[data-model="slow"]')
        expect(row.locator("td").nth(2)).to_have_text("1")
        expect(page.locator("#queue-count")).to_have_text("1")
        dash.shot("queue")
        expect(page.locator("#queue-empty")).to_be_visible(timeout=WAIT_MS)
    finally:
        client.join(30)
    assert answers == [200]
    dash.assert_no_problems()


def test_with_api_keys_the_page_asks_for_a_key_and_then_works(
    open_dashboard: OpenDashboard,
) -> None:
    """The page asks for the key on the first 401, says so when a key is refused, and with
    the right one shows the models, loads one and streams logs; a reload keeps the key."""
    with start_swapgate(config(f"apiKeys: [{KEY}]")) as gate:
        dash = open_dashboard(gate.url)
        dash.open()
        page = dash.page
        prompt = page.locator("#key-prompt")
        expect(prompt).to_be_visible()
        dash.shot("key-prompt")
        page.fill("#key-input", "sk-wrong")
        page.click("#key-submit")
        expect(page.locator("#key-message")).to_contain_text("not accepted")
        expect(prompt).to_be_visible()
        page.fill("#key-input", KEY)
        page.click("#key-submit")
        expect(prompt).to_be_hidden()
        dash.live()
        dash.model_row("alpha").locator("button.load").click()
        expect(dash.state_of("alpha")).to_have_text("ready", timeout=WAIT_MS)
        dash.tab("logs")
        expect(page.locator("#log-status")).to_have_text("live")
        expect(page.locator("#log-view")).to_contain_text("fake upstream alpha")
        page.reload()
        dash.live()
        expect(prompt).to_be_hidden()
        expect(dash.state_of("alpha")).to_have_text("ready")
        # the browser logs each 401 it was answered; nothing else may have gone wrong
        dash.assert_no_problems(allowed=("status of 401",))
        assert any("status of 401" in problem for problem in dash.problems)
