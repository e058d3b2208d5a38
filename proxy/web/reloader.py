"""Reloader: read the config again, check it on the side, and hand a valid one over as a diff.

Reloads run one at a time, in the order they were asked for; requests that arrive while one
runs are served together by the next one, so a burst of edits is applied once, last edit
last. A reload reads and checks the files in a thread (the event loop keeps serving), then
compiles the snapshot; only a config with no error is installed, in one synchronous step. A
failed reload leaves the running config untouched: every problem is logged in `--check`'s
format, kept for `GET /api/config` and published as a `ConfigReloaded` event.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from swapgate.proxy.config import CheckResult, Config, check_config
from swapgate.proxy.config.diff import ConfigDelta, diff, kept_ports, restart_only_changes
from swapgate.proxy.config.issues import in_line_order
from swapgate.proxy.config.watch import ConfigSources, SourceFile, fingerprint, watch_sources
from swapgate.proxy.errors import Issue
from swapgate.proxy.events import ConfigReloaded, EventBus
from swapgate.proxy.web.snapshot import Snapshot, compile_snapshot
from swapgate.router import RuleError

log = logging.getLogger("swapgate.reload")

Install = Callable[[Snapshot, ConfigDelta], None]
_REWATCH_S = 1.0


class ReloadOutcome(enum.StrEnum):
    """How a reload ended."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # the files are the ones already loaded: nothing to do
    FAILED = "failed"  # the old config keeps serving


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """One reload: its outcome, what triggered it, when (unix time), and what it found.

    `problems` are the lines `--check` would print (errors, then `warning: ...` lines in
    line order), with a heading first when the reload failed."""

    outcome: ReloadOutcome
    trigger: str
    at: float
    problems: tuple[str, ...] = ()
    delta: ConfigDelta = field(default_factory=ConfigDelta)

    def json(self) -> dict[str, object]:
        d = self.delta
        return {
            "outcome": str(self.outcome),
            "trigger": self.trigger,
            "at": round(self.at, 3),
            "problems": list(self.problems),
            "added": list(d.added),
            "changed": list(d.changed),
            "removed": list(d.removed),
            "unchanged": list(d.unchanged),
        }


class Reloader:
    """Reloads one gateway's config from `sources`; see the module docstring."""

    def __init__(
        self, sources: ConfigSources, current: Callable[[], Config], install: Install, bus: EventBus
    ) -> None:
        self.sources = sources
        self._current = current
        self._install = install
        self._bus = bus
        self.files: tuple[SourceFile, ...] = fingerprint(sources.config_path, sources.config_dir)
        self.loaded_at = time.time()
        self.last: ReloadResult | None = None
        self._tried = self.files  # the files the last reload read, valid or not
        self._pending: list[tuple[str, asyncio.Future[ReloadResult]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        """Start watching the files, if asked to. Call inside the event loop."""
        if self.sources.watch:
            self._watch = asyncio.create_task(self._watch_forever())

    async def _watch_forever(self) -> None:
        src = self.sources
        while not self._stop.is_set():
            try:
                await watch_sources(src.config_path, src.config_dir, self._on_change, self._stop)
            except Exception:  # a broken watch is logged and started again, never lost quietly
                log.exception("watching the config failed; watching again in %.0fs", _REWATCH_S)
            await asyncio.sleep(_REWATCH_S)

    async def stop(self) -> None:
        self._stop.set()
        tasks = [t for t in (self._watch, self._worker) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_change(self) -> None:
        self.request("watch")

    def request(self, trigger: str) -> asyncio.Future[ReloadResult]:
        """Reload soon; the future gets the result of the reload that reads the files after
        this call (one that is running already read them too early)."""
        future: asyncio.Future[ReloadResult] = asyncio.get_running_loop().create_future()
        self._pending.append((trigger, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())
        return future

    async def reload(self, trigger: str) -> ReloadResult:
        """Reload now (after any reload in progress) and return how it went."""
        return await asyncio.shield(self.request(trigger))

    async def _work(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            triggers = ", ".join(dict.fromkeys(trigger for trigger, _ in batch))
            try:
                result = await self._reload_once(triggers)
            except Exception as exc:  # a reload must answer whoever asked, whatever happened
                log.exception("config reload (%s) failed unexpectedly", triggers)
                problem = f"the reload failed unexpectedly: {exc!r}"
                failed = ReloadResult(ReloadOutcome.FAILED, triggers, time.time(), (problem,))
                result = self._record(failed)
            for _, future in batch:
                if not future.done():
                    future.set_result(result)

    async def _reload_once(self, trigger: str) -> ReloadResult:
        src = self.sources
        files = await asyncio.to_thread(fingerprint, src.config_path, src.config_dir)
        unchanged = ReloadResult(ReloadOutcome.UNCHANGED, trigger, time.time())
        if trigger == "watch" and files in (self.files, self._tried):
            return unchanged  # the watcher sees files nobody changed too: not news
        if files == self.files:
            log.info("config reload (%s): the files are unchanged", trigger)
            return self._record(unchanged)
        self._tried = files
        old = self._current()
        result = await asyncio.to_thread(
            check_config, src.config_path, src.config_dir, None, kept_ports=kept_ports(old)
        )
        snapshot, problems = _compiled(result)
        if snapshot is None:
            return self._failed(trigger, result, problems)
        delta = diff(old, snapshot.config)
        restart_only = [
            f"warning: {key}: changed; takes effect when swapgate restarts"
            for key in restart_only_changes(old, snapshot.config)
        ]
        self._install(snapshot, delta)  # synchronous: requests see the old or the new config
        self.files, self.loaded_at = files, time.time()
        lines = (*problems, *restart_only)
        log.info("config reloaded (%s): %s", trigger, delta.summary())
        for line in lines:
            log.warning("%s", line)
        return self._record(ReloadResult(ReloadOutcome.APPLIED, trigger, time.time(), lines, delta))

    def _failed(self, trigger: str, result: CheckResult, problems: tuple[str, ...]) -> ReloadResult:
        count = len(result.errors) or 1
        heading = f"{result.source}: {count} problem{'' if count == 1 else 's'}"
        log.error("config reload (%s) failed; still serving the previous config", trigger)
        for line in (heading, *problems):
            log.error("%s", line)
        return self._record(
            ReloadResult(ReloadOutcome.FAILED, trigger, time.time(), (heading, *problems))
        )

    def _record(self, result: ReloadResult) -> ReloadResult:
        self.last = result
        d = result.delta
        self._bus.publish(
            ConfigReloaded(
                str(result.outcome),
                result.trigger,
                time.monotonic(),
                result.problems,
                d.added,
                d.changed,
                d.removed,
            )
        )
        return result


def _compiled(result: CheckResult) -> tuple[Snapshot | None, tuple[str, ...]]:
    """The snapshot of a valid config (None if there is none) and every issue as `--check`
    prints it, in line order."""
    errors = {id(issue) for issue in result.errors}
    lines = tuple(
        issue.render() if id(issue) in errors else "warning: " + issue.render()
        for issue in in_line_order([*result.errors, *result.warnings])
    )
    if result.config is None:
        return None, lines
    try:
        return compile_snapshot(result.config), lines
    except RuleError as exc:  # validation compiles the same rules: only a bug gets here
        problem = Issue("routes", str(exc), None, result.source)
        return None, (*lines, problem.render())
