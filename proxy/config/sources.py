"""`--config` plus `--config-dir`: one document made of several files, merged as llama-swap does.

Files in the folder are read in sorted name order. Mappings merge key by key; the id sections
(models, groups, peers, ...) refuse an id defined twice; lists concatenate; a scalar may repeat
only with the same value; null gives way to a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path as FsPath

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.load import Document, read_document
from swapgate.proxy.errors import Issue

# Sections whose keys are ids: the same id in two files is an error, not a merge.
_ID_SECTIONS = frozenset({"models", "groups", "peers", "selectors", "profiles"})
_ID_SUBSECTIONS = {("routing", "router", "settings", "groups")}


def load_sources(
    config_path: str | None, config_dir: str | None, environ: Mapping[str, str], out: Collector
) -> Document:
    """Read the main file and every YAML file of the folder into one merged Document."""
    if not config_path and not config_dir:
        out.errors.append(Issue("", "at least one of --config or --config-dir is required"))
        out.broken = True
        return Document()
    files: list[FsPath] = []
    if config_path:
        files.append(FsPath(config_path))
    if config_dir:
        files += _dir_files(FsPath(config_dir), FsPath(config_path) if config_path else None, out)
        if not files:
            out.errors.append(Issue("", f"no configuration sources found in {config_dir}"))
            out.broken = True
    merged = Document()
    for path in files:
        doc = read_document(path, environ, out)
        merge_into(merged, doc, out)
    return merged


def _dir_files(folder: FsPath, main: FsPath | None, out: Collector) -> list[FsPath]:
    if not folder.is_dir():
        out.errors.append(Issue("", f"--config-dir {folder} is not a folder"))
        out.broken = True
        return []
    found = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if main is not None and any(p.resolve() == main.resolve() for p in found):
        message = f"config file {main} is also present in --config-dir {folder} — move it out"
        out.errors.append(Issue("", message, None, main.name))
        return [p for p in found if p.resolve() != main.resolve()]
    return found


def merge_into(target: Document, doc: Document, out: Collector) -> None:
    """Merge `doc` into `target` in place, recording conflicts at their path in `doc`."""
    for path, where in doc.lines.items():
        target.lines.setdefault(path, where)
    _merge_map(target.data, doc.data, (), out)


def _merge_map(into: dict[str, object], new: dict[str, object], path: Path, out: Collector) -> None:
    is_id_section = (len(path) == 1 and path[0] in _ID_SECTIONS) or path in _ID_SUBSECTIONS
    for key, value in new.items():
        here = (*path, key)
        if key not in into or into[key] is None:
            into[key] = value
        elif value is None:
            continue
        elif is_id_section:
            out.error(here, f'duplicate {path[-1]} "{key}": defined in more than one file')
        else:
            into[key] = _merge_value(into[key], value, here, out)


def _merge_value(old: object, new: object, path: Path, out: Collector) -> object:
    if isinstance(old, dict) and isinstance(new, dict):
        _merge_map(old, new, path, out)
        return old
    if isinstance(old, list) and isinstance(new, list):
        return [*old, *new]
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        out.error(path, "incompatible YAML node kinds in --config-dir files (mapping/list/scalar)")
        return old
    if old != new or type(old) is not type(new):
        out.error(path, f'conflict at "{path[-1]}": {old!r} in one file, {new!r} in another')
    return old
