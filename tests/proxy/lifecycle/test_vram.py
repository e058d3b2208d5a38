"""VRAM estimates from llama-server command lines on generated GGUF files, and /proc groups.

Every expected figure is computed by hand in the test: KV bytes = cells x sum over layers of
(K + V elements per token) x element size, rounded up to MiB; weights = the file size.
"""

from __future__ import annotations

import os
import shlex
import signal
from pathlib import Path

import pytest

from swapgate.bench import tiny_gguf
from swapgate.bench.tiny_gguf.gguf import (
    T_ARRAY,
    T_FLOAT32,
    T_STRING,
    T_UINT32,
    KeyValue,
    write_gguf,
)
from swapgate.proxy.lifecycle.vram import VramEstimate, estimate_from_argv, process_group_pids
from tests.support.procs import children_of, kill_group, spawn, wait_until

MIB = 1024 * 1024

# name -> tiny_gguf arguments. Per token and layer, K and V each hold kv_heads x head_dim.
SHAPES = {
    # 2 layers, head_dim 16, 4 kv heads: (64 + 64) x 2 bytes x 2 layers = 512 B per cell
    "a": ["--layers", "2", "--hidden", "64", "--heads", "4", "--ctx", "4096"],
    # 3 layers, head_dim 16, 2 kv heads: (32 + 32) x 2 B x 3 = 384 B per cell
    "gqa": ["--layers", "3", "--hidden", "128", "--heads", "8", "--kv-heads", "2", "--ctx", "8192"],
    # the same without GQA, 8 kv heads: (128 + 128) x 2 B x 3 = 1536 B per cell
    "mha": ["--layers", "3", "--hidden", "128", "--heads", "8", "--ctx", "8192"],
    # 4 layers, head_dim 32, 2 kv heads: (64 + 64) x 2 B x 4 = 1024 B per cell
    "long": [
        "--layers",
        "4",
        "--hidden",
        "128",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--ctx",
        "32768",
    ],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One generated model per shape, shared by the module's tests."""
    root = tmp_path_factory.mktemp("models")
    paths = {}
    for name, args in SHAPES.items():
        paths[name] = root / f"{name}.gguf"
        assert tiny_gguf.main([str(paths[name]), *args]) == 0
    return paths


def _file_mib(*paths: Path) -> int:
    return -(-sum(p.stat().st_size for p in paths) // MIB)


def _estimate(path: Path, *flags: str) -> VramEstimate:
    estimate = estimate_from_argv(["llama-server", "-m", str(path), *flags])
    assert estimate is not None
    return estimate


@pytest.mark.parametrize(
    ("shape", "flags", "kv_mib", "context"),
    [
        ("a", [], 2, 4096),  # 512 B x 4096 = 2 MiB
        ("a", ["-c", "0"], 2, 4096),
        ("gqa", [], 3, 8192),  # 384 B x 8192 = 3 MiB
        ("mha", [], 12, 8192),  # 1536 B x 8192 = 12 MiB
        ("long", [], 32, 32768),  # 1024 B x 32768 = 32 MiB
    ],
)
def test_context_comes_from_the_header_when_c_is_absent_or_zero(
    models: dict[str, Path], shape: str, flags: list[str], kv_mib: int, context: int
) -> None:
    """Without -c (or with -c 0) the KV cache is sized for the trained context_length."""
    estimate = _estimate(models[shape], *flags)
    weights = _file_mib(models[shape])
    assert estimate == VramEstimate(
        mib=weights + kv_mib,
        model_path=str(models[shape]),
        weights_mib=weights,
        kv_cache_mib=kv_mib,
        context=context,
        detail=estimate.detail,
    )


def test_detail_names_the_parts_of_the_sum(models: dict[str, Path]) -> None:
    """The detail sentence shows file, KV cache, cache types, tokens and slots."""
    weights = _file_mib(models["a"])
    assert _estimate(models["a"]).detail == (
        f"file {weights} MiB + KV cache 2 MiB (f16/f16) for 4096 tokens shared by 4 slots"
    )
    assert _estimate(models["a"], "-np", "1", "-ctk", "q8_0").detail == (
        f"file {weights} MiB + KV cache 2 MiB (q8_0/f16) for 4096 tokens x 1 slot"
    )


@pytest.mark.parametrize(
    ("shape", "flags", "kv_mib", "context"),
    [
        ("a", ["-c", "8192"], 4, 8192),  # 512 B x 8192 = 4 MiB, above the trained 4096
        ("a", ["--ctx-size", "16384"], 8, 16384),
        ("a", ["--ctx-size=16384"], 8, 16384),
        ("a", ["--ctx_size", "16384"], 8, 16384),  # llama.cpp reads _ as - in long flags
        ("a", ["-c", "1000"], 1, 1024),  # padded to 256: 512 B x 1024 = 0.5 MiB, rounded up
        ("a", ["-c", "8192", "-c", "2048"], 1, 2048),  # the last one wins
        ("gqa", ["-c", "2048"], 1, 2048),  # 384 B x 2048 = 0.75 MiB, rounded up
        ("long", ["-c", "4096"], 4, 4096),  # 1024 B x 4096 = 4 MiB
        ("a", ["-c", "lots"], 2, 4096),  # unreadable: the trained context, as if absent
    ],
)
def test_c_sets_the_total_context(
    models: dict[str, Path], shape: str, flags: list[str], kv_mib: int, context: int
) -> None:
    """-c/--ctx-size (spaced, = or _ forms) sets the cells, padded up to a multiple of 256."""
    estimate = _estimate(models[shape], *flags)
    assert (estimate.kv_cache_mib, estimate.context) == (kv_mib, context)
    assert estimate.mib == estimate.weights_mib + kv_mib


def test_kv_heads_not_attention_heads_size_the_cache(models: dict[str, Path]) -> None:
    """With head_count_kv = 2 of 8 heads the KV cache is a quarter of the full-attention one."""
    assert _estimate(models["gqa"]).kv_cache_mib * 4 == _estimate(models["mha"]).kv_cache_mib


@pytest.mark.parametrize(
    ("flags", "context", "kv_mib"),
    [
        ([], 4096, 2),  # -np auto: 4 slots sharing one unified cache of -c cells
        (["-np", "-1"], 4096, 2),
        (["-np", "1"], 4096, 2),
        (["-np", "4"], 4096, 2),  # split: 4 x 1024 cells, the same total
        (["--parallel", "4"], 4096, 2),
        (["--parallel=4"], 4096, 2),
        (["-np", "3"], 4608, 3),  # 4096 / 3 = 1365 -> 1536 per slot; 512 B x 4608 = 2.25 MiB
        (["-np", "3", "-kvu"], 4096, 2),  # unified: no per-slot padding
        (["-np", "3", "--kv-unified"], 4096, 2),
        (["-np", "3", "-kvu", "-no-kvu"], 4608, 3),  # the last switch wins
        (["-np", "3", "--no-kv-unified"], 4608, 3),
    ],
)
def test_parallel_slots_share_the_total_context(
    models: dict[str, Path], flags: list[str], context: int, kv_mib: int
) -> None:
    """-np N splits -c among the slots (padded per slot) unless the cache is unified."""
    estimate = _estimate(models["a"], "-c", "4096", *flags)
    assert (estimate.context, estimate.kv_cache_mib) == (context, kv_mib)


def test_split_slots_show_in_the_detail(models: dict[str, Path]) -> None:
    """An explicit -np says how many tokens each slot gets."""
    assert _estimate(models["a"], "-c", "4096", "-np", "4").detail.endswith(
        "for 1024 tokens x 4 slots"
    )


@pytest.mark.parametrize(
    ("flags", "kv_mib"),
    [
        ([], 8),  # f16: 512 B x 16384 = 8 MiB
        (["-ctk", "f32", "-ctv", "f32"], 16),  # 2 layers x (256 + 256) B x 16384 = 16 MiB
        # q8_0 rows: 64 x 34 / 32 = 68 B; 2 x (68 + 68) x 16384 = 4.25 MiB
        (["-ctk", "q8_0", "-ctv", "q8_0"], 5),
        # q4_0 rows: 64 x 18 / 32 = 36 B; 2 x (36 + 36) x 16384 = 2.25 MiB
        (["--cache-type-k", "q4_0", "--cache-type-v", "q4_0"], 3),
        # K q8_0, V f16: 2 x (68 + 128) x 16384 = 6.125 MiB
        (["--cache-type-k=q8_0"], 7),
        (["-ctk", "bogus"], 8),  # a name llama.cpp would refuse counts as its default, f16
    ],
)
def test_cache_types_set_the_element_size(
    models: dict[str, Path], flags: list[str], kv_mib: int
) -> None:
    """-ctk/-ctv change K and V bytes per element: f32 4, f16 2, q8_0 1.0625, q4_0 0.5625."""
    assert _estimate(models["a"], "-c", "16384", *flags).kv_cache_mib == kv_mib


def test_model_flag_forms(models: dict[str, Path], tmp_path: Path) -> None:
    """-m, --model and --model=PATH all name the model; a repeated flag's last value wins."""
    path = str(models["a"])
    for argv in (
        ["llama-server", "--model", path],
        ["llama-server", f"--model={path}"],
        ["llama-server", "-m", str(tmp_path / "missing.gguf"), "--port", "9", "-m", path],
    ):
        estimate = estimate_from_argv(argv)
        assert estimate is not None
        assert (estimate.model_path, estimate.kv_cache_mib) == (path, 2)


def test_shell_wrapped_commands_are_unwrapped(models: dict[str, Path], tmp_path: Path) -> None:
    """The model and flags are read from a sh -c script; the shell's own -c is not a context."""
    spaced = tmp_path / "my models" / "a copy.gguf"
    spaced.parent.mkdir()
    spaced.write_bytes(models["a"].read_bytes())
    inner = f"exec llama-server --port 9 -m {shlex.quote(str(spaced))} -c 8192"
    for argv in (
        ["sh", "-c", inner],
        ["/bin/bash", "-lc", inner],
        ["env", "X=1", "sh", "-ec", inner],
        ["bash", "-o", "pipefail", "-c", f"cd /tmp && {inner}"],
        ["sh", "-c", f"bash -c {shlex.quote(inner)}"],
    ):
        estimate = estimate_from_argv(argv)
        assert estimate is not None, argv
        assert (estimate.model_path, estimate.context, estimate.kv_cache_mib) == (
            str(spaced),
            8192,
            4,
        )


def test_no_readable_model_gives_none(models: dict[str, Path], tmp_path: Path) -> None:
    """No model flag, a missing file, a directory or a non-GGUF file: None, never an error."""
    text = tmp_path / "notes.gguf"
    text.write_text("hello, not a model\n")
    for argv in (
        [],
        ["llama-server", "-hf", "org/repo"],
        ["llama-server", "-m"],
        ["llama-server", "-m", str(tmp_path / "missing.gguf")],
        ["llama-server", "-m", str(tmp_path)],
        ["llama-server", "-m", str(text)],
        ["sh", "-c", "llama-server -m 'unbalanced"],
        ["sh", "-c"],
    ):
        assert estimate_from_argv(argv) is None, argv


def test_truncated_or_corrupt_headers_give_none(models: dict[str, Path], tmp_path: Path) -> None:
    """A header cut short anywhere in the metadata, or with a bad version or type, is None."""
    data = models["a"].read_bytes()
    broken = tmp_path / "broken.gguf"
    # cut in: magic, version, counts, first key and value, llama.* keys, tokenizer arrays
    # (tokens: a string array skipped string by string; scores: skipped in one seek) and
    # the chat template
    for size in (0, 2, 6, 20, 40, 60, 300, 2000, 8000, 12000, 16500):
        broken.write_bytes(data[:size])
        assert estimate_from_argv(["llama-server", "-m", str(broken)]) is None, size
    # bytes 4..8 are the version, 52..56 the type of the first value (general.architecture)
    for offset, patch in ((4, 1), (4, 4), (52, 99)):
        broken.write_bytes(data[:offset] + patch.to_bytes(4, "little") + data[offset + 4 :])
        assert estimate_from_argv(["llama-server", "-m", str(broken)]) is None, (offset, patch)


def test_gguf_v2_reads_like_v3(models: dict[str, Path], tmp_path: Path) -> None:
    """Version 2 has the same metadata layout as 3 and gives the same estimate."""
    data = models["a"].read_bytes()
    v2 = tmp_path / "v2.gguf"
    v2.write_bytes(data[:4] + (2).to_bytes(4, "little") + data[8:])
    assert _estimate(v2).kv_cache_mib == _estimate(models["a"]).kv_cache_mib == 2


def _header_only_model(path: Path, *extra: KeyValue) -> None:
    """A GGUF with no tensors: a tokenizer-like string array, then the sizing keys."""
    kvs = [
        KeyValue("general.architecture", T_STRING, "hybrid"),
        KeyValue("tokenizer.ggml.tokens", T_ARRAY, [f"tok{i}" for i in range(5000)], T_STRING),
        KeyValue("tokenizer.ggml.scores", T_ARRAY, [0.5] * 5000, T_FLOAT32),
        KeyValue("hybrid.block_count", T_UINT32, 3),
        KeyValue("hybrid.embedding_length", T_UINT32, 64),
        KeyValue("hybrid.attention.head_count", T_UINT32, 4),
        KeyValue("hybrid.context_length", T_UINT32, 1024),
        *extra,
    ]
    write_gguf(str(path), kvs, [])


def test_per_layer_kv_heads_and_explicit_key_value_lengths(tmp_path: Path) -> None:
    """Array head_count_kv is per layer (0 = no KV); key/value_length replace n_embd / n_head."""
    path = tmp_path / "hybrid.gguf"
    _header_only_model(
        path,
        KeyValue("hybrid.attention.head_count_kv", T_ARRAY, [4, 0, 2], T_UINT32),
        KeyValue("hybrid.attention.key_length", T_UINT32, 32),
        KeyValue("hybrid.attention.value_length", T_UINT32, 16),
    )
    # per token: layer 0: 4 x (32 + 16) = 192, layer 1: 0, layer 2: 2 x 48 = 96 -> 288 x 2 B
    # = 576 B; x 16384 cells = 9 MiB exactly
    estimate = _estimate(path, "-c", "16384")
    assert (estimate.kv_cache_mib, estimate.weights_mib, estimate.mib) == (9, 1, 10)
    # from the header: 1024 cells x 576 B = 0.5625 MiB, rounded up
    assert (_estimate(path).context, _estimate(path).kv_cache_mib) == (1024, 1)


def test_head_count_kv_defaults_to_head_count(tmp_path: Path) -> None:
    """Without head_count_kv every head has its own K and V, of n_embd / n_head each."""
    path = tmp_path / "mha.gguf"
    _header_only_model(path)
    # 3 layers x 4 heads x (16 + 16) x 2 B = 768 B per cell; x 8192 = 6 MiB
    assert _estimate(path, "-c", "8192").kv_cache_mib == 6


def test_missing_sizing_keys_give_none(tmp_path: Path) -> None:
    """A GGUF without its architecture's block_count or head_count cannot be sized."""
    path = tmp_path / "bare.gguf"
    write_gguf(str(path), [KeyValue("general.architecture", T_STRING, "llama")], [])
    assert estimate_from_argv(["llama-server", "-m", str(path), "-c", "4096"]) is None


def test_split_model_weights_sum_all_parts(models: dict[str, Path], tmp_path: Path) -> None:
    """A model split into -0000K-of-0000N.gguf parts weighs all parts; a missing part is None."""
    first = tmp_path / "big-00001-of-00002.gguf"
    second = tmp_path / "big-00002-of-00002.gguf"
    first.write_bytes(models["a"].read_bytes())
    second.write_bytes(b"\0" * (3 * MIB))
    estimate = _estimate(first)
    assert estimate.weights_mib == _file_mib(first, second)
    assert estimate.kv_cache_mib == 2
    second.unlink()
    assert estimate_from_argv(["llama-server", "-m", str(first)]) is None


# ---------------------------------------------------------------------------------------------
# process groups
# ---------------------------------------------------------------------------------------------


def test_process_group_pids_finds_the_whole_group() -> None:
    """A shell and the sleeps it started are all found by their group id, nothing else."""
    proc = spawn(["sh", "-c", "sleep 30 & sleep 30"])
    try:
        # dash may exec the last sleep in place of the shell: the group has 2 or 3 members
        def members() -> list[int]:
            found = process_group_pids(proc.pid)
            return found if len(found) >= 2 else []

        pids = wait_until(members, message="the background sleep")
        assert proc.pid in pids
        assert set(children_of(proc.pid)) <= set(pids)
        assert all(os.getpgid(pid) == proc.pid for pid in pids)
        assert os.getpid() not in pids
    finally:
        kill_group(proc)
    wait_until(lambda: process_group_pids(proc.pid) == [], message="the group to be gone")


def test_process_group_pids_skips_zombies() -> None:
    """A killed child that is not reaped yet is a zombie and no longer counts."""
    proc = spawn(["sleep", "30"])
    try:
        assert process_group_pids(proc.pid) == [proc.pid]
        os.kill(proc.pid, signal.SIGKILL)

        def zombie() -> bool:
            stat = Path(f"/proc/{proc.pid}/stat").read_bytes()
            return stat[stat.rfind(b")") + 2 :].startswith(b"Z")

        wait_until(zombie, message="the child to become a zombie")
        assert process_group_pids(proc.pid) == []
    finally:
        kill_group(proc)


def test_process_group_pids_of_this_process() -> None:
    """Our own group includes us; a group id nobody has is empty."""
    assert os.getpid() in process_group_pids(os.getpgrp())
    assert process_group_pids(2**22 + 12345) == []  # above the kernel's pid_max limit
