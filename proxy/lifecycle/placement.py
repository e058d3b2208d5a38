"""Which placement policy and scheduler settings a config asks for. Pure."""

from __future__ import annotations

from swapgate.proxy.config.model import Config, RouterKind
from swapgate.proxy.lifecycle.eviction import groups_from_config
from swapgate.proxy.lifecycle.matrix import MatrixPolicy
from swapgate.proxy.lifecycle.memory import MemoryBook
from swapgate.proxy.lifecycle.policies import (
    FitPolicy,
    FitSettings,
    GroupSwapPolicy,
    MatrixSwapPolicy,
    Policy,
    SparingExternal,
)
from swapgate.proxy.lifecycle.scheduler import SchedulerSettings


def scheduler_settings(config: Config) -> SchedulerSettings:
    """The scheduler's bounds and priorities from `config`."""
    return SchedulerSettings(
        max_wait_s=config.scheduling.max_wait_s,
        priority=config.scheduling.priority,
        concurrency_limit={m: s.concurrency_limit for m, s in config.models.items()},
    )


def policy_for(config: Config, memory: MemoryBook) -> Policy:
    """`routing.router.use` as a policy; external models are never stopped by it."""
    policy = _placement(config, memory)
    external = frozenset(m for m, spec in config.models.items() if spec.external)
    return SparingExternal(policy, external) if external else policy


def _placement(config: Config, memory: MemoryBook) -> Policy:
    scheduling = config.scheduling
    if scheduling.router is RouterKind.MATRIX and scheduling.matrix is not None:
        return MatrixSwapPolicy(MatrixPolicy(scheduling.matrix))
    if scheduling.router is RouterKind.FIT:
        budget = memory.budget_mib(scheduling.fit)
        settings = FitSettings(budget or 0, frozenset(scheduling.fit.keep))
        return FitPolicy(settings, memory.need_mib)
    return GroupSwapPolicy(groups_from_config(config.raw_sections.get("groups")))
