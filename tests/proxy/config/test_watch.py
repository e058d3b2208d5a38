"""The config's files on disk: which they are, their hashes, and the watch on their folders."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from swapgate.proxy.config.watch import fingerprint, source_paths, watch_sources, watched_folders
from tests.support.specs import run


def test_sources_are_the_main_file_then_the_folders_yaml_in_name_order(tmp_path: Path) -> None:
    """As the loader reads them: --config first, then *.yaml/*.yml of --config-dir sorted,
    the main file not twice, other files ignored."""
    main = tmp_path / "config.yaml"
    main.write_text("a: 1\n")
    folder = tmp_path / "conf.d"
    folder.mkdir()
    for name in ("b.yml", "a.yaml", "notes.txt"):
        (folder / name).write_text(name)
    assert source_paths(str(main), str(folder)) == [main, folder / "a.yaml", folder / "b.yml"]
    files = fingerprint(str(main), str(folder))
    assert files[0].sha256 == hashlib.sha256(b"a: 1\n").hexdigest()
    assert fingerprint(str(tmp_path / "missing.yaml"), None)[0].sha256 == ""


def test_a_symlinked_source_has_its_targets_folder_watched(tmp_path: Path) -> None:
    """A ConfigMap-style link: the link's folder and the target's folder are both watched."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "config.yaml").write_text("x: 1\n")
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "config.yaml").symlink_to(real / "config.yaml")
    assert watched_folders(str(mounted / "config.yaml"), None) == [mounted, real]


def test_an_edit_calls_back_once_and_stop_ends_the_watch(tmp_path: Path) -> None:
    """Three writes in quick succession are one callback; setting `stop` ends the watch."""
    config = tmp_path / "config.yaml"
    config.write_text("v: 0\n")

    async def body() -> int:
        calls: list[int] = []
        stop = asyncio.Event()
        task = asyncio.create_task(watch_sources(str(config), None, lambda: calls.append(1), stop))
        await asyncio.sleep(0.3)  # the watch is set up
        for i in range(3):
            config.write_text(f"v: {i + 1}\n")
            await asyncio.sleep(0.02)
        for _ in range(100):  # up to 5 s
            if calls:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # a second callback would come within the quiet period
        stop.set()
        await asyncio.wait_for(task, 5)
        return len(calls)

    assert run(body()) == 1
