"""The scheduling keys: timeouts, fairness, priorities and the placement policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from swapgate.proxy.config.model import RouterKind
from tests.proxy.config.conftest import IssuesOf, LoadText

TWO = "models:\n  a:\n    cmd: srv --port ${PORT}\n  b:\n    cmd: srv --port ${PORT}\n"


def test_defaults_are_the_documented_ones(tmp_path: Path, load_text: LoadText) -> None:
    """Without any key: group policy, 600 s queue timeout, unbounded drain, 30 s fairness."""
    config = load_text(tmp_path, TWO).config
    scheduling = config.scheduling
    assert scheduling.router is RouterKind.GROUP
    assert scheduling.queue_timeout_s == 600.0
    assert scheduling.drain_timeout_s == 0.0
    assert scheduling.max_wait_s == 30.0
    assert config.queue_timeout_s(config.models["a"]) == 600.0


def test_model_timeouts_override_the_top_level(tmp_path: Path, load_text: LoadText) -> None:
    """Per-model queueTimeout/drainTimeout win over the top-level values; others inherit."""
    text = (
        "queueTimeout: 20\ndrainTimeout: 5\n"
        "models:\n  a:\n    cmd: srv --port ${PORT}\n    queueTimeout: 0\n    drainTimeout: 1\n"
        "  b:\n    cmd: srv --port ${PORT}\n"
    )
    config = load_text(tmp_path, text).config
    a, b = config.models["a"], config.models["b"]
    assert (config.queue_timeout_s(a), config.drain_timeout_s(a)) == (0.0, 1.0)
    assert (config.queue_timeout_s(b), config.drain_timeout_s(b)) == (20.0, 5.0)


def test_negative_timeouts_are_located_errors(tmp_path: Path, issues_of: IssuesOf) -> None:
    """A negative queueTimeout or vram is reported at its line and path."""
    text = "queueTimeout: -1\nmodels:\n  a:\n    cmd: srv --port ${PORT}\n    vram: 0\n"
    rendered = [i.render() for i in issues_of(tmp_path, text)]
    assert rendered == [
        "config.yaml:1: queueTimeout: must be >= 0 seconds, got -1",
        "config.yaml:5: models.a.vram: must be >= 1 MiB, got 0",
    ]


def test_fifo_settings_are_read(tmp_path: Path, load_text: LoadText) -> None:
    """maxWaitSeconds and llama-swap's priority map reach the scheduler settings."""
    text = TWO + (
        "routing:\n  scheduler:\n    settings:\n      fifo:\n"
        "        maxWaitSeconds: 7\n        priority: {b: 10}\n"
    )
    scheduling = load_text(tmp_path, text).config.scheduling
    assert (scheduling.max_wait_s, dict(scheduling.priority)) == (7.0, {"b": 10})


def test_fit_policy_and_vram(tmp_path: Path, load_text: LoadText) -> None:
    """use: fit with budget, reserve and keep; per-model vram is the configured figure."""
    text = (
        "models:\n  a:\n    cmd: srv --port ${PORT}\n    vram: 4000\n  b:\n    cmd: srv --port ${PORT}\n"
        "routing:\n  router:\n    use: fit\n    settings:\n"
        "      fit: {budgetMiB: 20000, reserveMiB: 500, keep: [a]}\n"
    )
    config = load_text(tmp_path, text).config
    fit = config.scheduling.fit
    assert config.scheduling.router is RouterKind.FIT
    assert (fit.budget_mib, fit.reserve_mib, fit.keep) == (20000, 500, ("a",))
    assert config.models["a"].vram_mib == 4000
    assert config.models["b"].vram_mib is None


def test_fit_keep_must_name_models(tmp_path: Path, issues_of: IssuesOf) -> None:
    """A keep entry that is not a model is an error listing the known ones."""
    text = (
        TWO + "routing:\n  router:\n    use: fit\n    settings:\n      fit:\n        keep: [zz]\n"
    )
    (issue,) = issues_of(tmp_path, text)
    assert issue.render() == (
        'config.yaml:11: routing.router.settings.fit.keep[0]: unknown model "zz"; '
        "known models: a, b"
    )


def test_fit_settings_without_use_fit_warn(tmp_path: Path, load_text: LoadText) -> None:
    """settings.fit under another router is not silently ignored."""
    text = TWO + "routing:\n  router:\n    settings:\n      fit: {budgetMiB: 10}\n"
    warnings = [w.render() for w in load_text(tmp_path, text).warnings]
    assert any("routing.router.settings.fit: ignored" in w for w in warnings), warnings


@pytest.mark.parametrize(
    "section",
    [
        "matrix:\n  vars: {x: a, y: b}\n  sets:\n    pair: x & y\n",
        "routing:\n  router:\n    use: matrix\n    settings:\n      matrix:\n"
        "        sets:\n          pair: a & b\n",
    ],
)
def test_matrix_is_compiled_in_either_form(
    tmp_path: Path, load_text: LoadText, section: str
) -> None:
    """Legacy top-level matrix and routing.router.settings.matrix both compile a program."""
    scheduling = load_text(tmp_path, TWO + section).config.scheduling
    assert scheduling.router is RouterKind.MATRIX
    assert scheduling.matrix is not None
    assert scheduling.matrix.members() == frozenset({"a", "b"})


def test_bad_matrix_expression_is_a_located_error(tmp_path: Path, issues_of: IssuesOf) -> None:
    """An expression error names its file:line, path and position."""
    text = TWO + "matrix:\n  sets:\n    pair: a & \n"
    (issue,) = issues_of(tmp_path, text)
    assert issue.line == 8
    assert issue.path == "matrix.sets.pair"
    assert "position" in issue.message


def test_routing_router_groups_are_the_groups(tmp_path: Path, load_text: LoadText) -> None:
    """routing.router.settings.groups (llama-swap's new form) defines the swap groups."""
    text = TWO + (
        "routing:\n  router:\n    use: group\n    settings:\n      groups:\n"
        "        g1:\n          swap: false\n          members: [a, b]\n"
    )
    groups = load_text(tmp_path, text).config.raw_sections["groups"]
    assert isinstance(groups, dict)
    assert groups["g1"] == {
        "swap": False,
        "exclusive": True,
        "persistent": False,
        "members_sorted": ["a", "b"],
    }
