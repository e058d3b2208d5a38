"""The config's source files on disk: which they are, their content hashes, and a watch that
calls back when they may have changed. The only file watching in swapgate.

The watch uses `watchfiles` (inotify on Linux, through its Rust core) on the folders that
hold the sources, not on the files: editors replace a file by renaming a new one over it,
and Kubernetes swaps a `..data` symlink, and both leave a watch on the old file blind.
Symlinked sources are followed: the folder of each link's target is watched too. Changes
less than `QUIET_MS` apart are one change; the caller compares hashes to tell a real edit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("swapgate.reload")

QUIET_MS = 300  # a change is reported once no further change came for this long
MAX_WAIT_MS = 1600  # ... or this long after the first one, while changes keep coming
_YAML = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class ConfigSources:
    """Where the config is read from, as given on the command line."""

    config_path: str | None
    config_dir: str | None = None
    watch: bool = False  # --watch-config


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One source file and the SHA-256 of its content ("" when it cannot be read)."""

    path: str
    sha256: str


def source_paths(config_path: str | None, config_dir: str | None) -> list[Path]:
    """The files a load reads, in the order it reads them (as `sources.load_sources`)."""
    files = [Path(config_path)] if config_path else []
    if config_dir and Path(config_dir).is_dir():
        main = files[0].resolve() if files else None
        found = sorted(p for p in Path(config_dir).iterdir() if p.suffix in _YAML and p.is_file())
        files += [p for p in found if p.resolve() != main]
    return files


def fingerprint(config_path: str | None, config_dir: str | None) -> tuple[SourceFile, ...]:
    """Every source file with its content hash. Blocking: run it in a thread."""
    return tuple(SourceFile(str(p), _sha256(p)) for p in source_paths(config_path, config_dir))


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def watched_folders(config_path: str | None, config_dir: str | None) -> list[Path]:
    """The folders whose changes may change the sources: each source's folder, each link
    target's folder, and `config_dir` itself (a file added there is a new source)."""
    folders: list[Path] = []
    candidates = [Path(config_dir)] if config_dir else []
    for path in ([Path(config_path)] if config_path else []) + source_paths(None, config_dir):
        candidates += [path.absolute().parent, path.resolve().parent]
    for folder in candidates:
        folder = folder.absolute()
        if folder.is_dir() and folder not in folders:
            folders.append(folder)
    return folders


async def watch_sources(
    config_path: str | None,
    config_dir: str | None,
    on_change: Callable[[], None],
    stop: asyncio.Event,
) -> None:
    """Call `on_change` after each burst of changes in the watched folders, until `stop`."""
    import watchfiles  # only when watching: --check and plain serving never load it

    folders = watched_folders(config_path, config_dir)
    log.info("watching the config: %s", ", ".join(str(f) for f in folders))
    async for _changes in watchfiles.awatch(
        *folders,
        watch_filter=None,  # any file: a `..data` link or a renamed temp file counts
        debounce=MAX_WAIT_MS,
        step=QUIET_MS,
        stop_event=stop,
        recursive=False,
    ):
        on_change()
