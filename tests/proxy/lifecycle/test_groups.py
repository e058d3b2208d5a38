"""Group-aware eviction (llama-swap's swap / exclusive / persistent), pure."""

from __future__ import annotations

from swapgate.proxy.lifecycle.eviction import GroupPolicy, Groups, evictions_for, groups_from_config

AB = GroupPolicy("ab", swap=False, exclusive=True)
TOOLS = GroupPolicy("tools", swap=False, exclusive=False, persistent=True)
BIG = GroupPolicy("big", swap=True, exclusive=False)
GROUPS = Groups({"a": AB, "b": AB, "embed": TOOLS, "llama": BIG, "qwen": BIG})


def test_ungrouped_models_swap_one_at_a_time() -> None:
    """Without groups every other active model is evicted, as llama-swap does by default."""
    assert evictions_for("x", ["y", "x", "z"]) == ("y", "z")


def test_swap_false_members_run_together() -> None:
    """Members of a swap: false group do not evict each other."""
    assert evictions_for("a", ["b"], GROUPS) == ()


def test_exclusive_group_evicts_other_groups_but_not_persistent_ones() -> None:
    """Starting an exclusive member stops other groups, except persistent groups."""
    assert evictions_for("a", ["llama", "embed", "b"], GROUPS) == ("llama",)


def test_swap_group_evicts_its_own_running_member_only() -> None:
    """A swap: true, non-exclusive group replaces its own member and leaves others alone."""
    assert evictions_for("qwen", ["llama", "a", "embed"], GROUPS) == ("llama",)


def test_default_group_model_evicts_non_persistent_groups() -> None:
    """An ungrouped model is in the exclusive default group."""
    assert evictions_for("solo", ["a", "embed", "qwen"], GROUPS) == ("a", "qwen")


def test_groups_from_config_reads_the_validated_section() -> None:
    """The config's groups section (members_sorted) becomes per-model policies."""
    groups = groups_from_config(
        {
            "ab": {
                "swap": False,
                "exclusive": True,
                "persistent": False,
                "members_sorted": ["a", "b"],
            }
        }
    )
    assert groups.policy("a") == GroupPolicy("ab", swap=False, exclusive=True, persistent=False)
    assert groups.policy("other").name == "(default)"
    assert groups_from_config(None).of_model == {}
