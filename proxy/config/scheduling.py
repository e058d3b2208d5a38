"""The typed scheduling settings: queue and drain timeouts, fairness, priorities, and the
placement policy chosen by `routing.router.use` (group, matrix, or swapgate's fit).

swapgate keys: top-level `queueTimeout` and `drainTimeout` (seconds, 0 = no bound),
`routing.scheduler.settings.fifo.maxWaitSeconds`, `routing.router.use: fit` with
`routing.router.settings.fit: {budgetMiB, reserveMiB, keep}`. llama-swap's own routing keys are
checked in selection.py; this module only turns them into `Scheduling`. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from swapgate.proxy.config.issues import Collector, Path
from swapgate.proxy.config.matrix import read_matrix
from swapgate.proxy.config.model import (
    DEFAULT_MAX_WAIT_S,
    DEFAULT_QUEUE_TIMEOUT_S,
    FitConfig,
    RouterKind,
    Scheduling,
)
from swapgate.proxy.config.validate import read_int, read_map, read_str_list, warn_unknown

FIT_PATH: Path = ("routing", "router", "settings", "fit")
FIFO_PATH: Path = ("routing", "scheduler", "settings", "fifo")
FIT_KEYS = ("budgetMiB", "reserveMiB", "keep")


def read_scheduling(data: Mapping[str, object], model_ids: set[str], out: Collector) -> Scheduling:
    """Scheduling from the top level of the document (already macro-expanded)."""
    routing = read_map(out, ("routing",), data.get("routing"))
    router = read_map(out, ("routing", "router"), routing.get("router"))
    settings = read_map(out, ("routing", "router", "settings"), router.get("settings"))
    use = _router_kind(data, router)
    fifo = _fifo(routing)
    matrix = None
    if use is RouterKind.MATRIX:
        legacy = data.get("matrix") is not None
        raw = data.get("matrix") if legacy else settings.get("matrix")
        path: Path = ("matrix",) if legacy else ("routing", "router", "settings", "matrix")
        matrix = read_matrix(raw, path, model_ids, out)
    return Scheduling(
        router=use,
        max_wait_s=float(
            read_int(
                out,
                (*FIFO_PATH, "maxWaitSeconds"),
                fifo.get("maxWaitSeconds"),
                int(DEFAULT_MAX_WAIT_S),
                0,
                "seconds",
            )
        ),
        priority=_priorities(fifo, model_ids),
        fit=_fit(settings.get("fit"), use, model_ids, out),
        matrix=matrix,
        queue_timeout_s=float(
            read_int(
                out,
                ("queueTimeout",),
                data.get("queueTimeout"),
                int(DEFAULT_QUEUE_TIMEOUT_S),
                0,
                "seconds",
            )
        ),
        drain_timeout_s=float(
            read_int(out, ("drainTimeout",), data.get("drainTimeout"), 0, 0, "seconds")
        ),
    )


def _router_kind(data: Mapping[str, object], router: Mapping[str, object]) -> RouterKind:
    use = router.get("use")
    if use is None:
        return RouterKind.MATRIX if data.get("matrix") is not None else RouterKind.GROUP
    try:
        return RouterKind(str(use))
    except ValueError:
        return RouterKind.GROUP  # reported by selection.read_routing


def _fifo(routing: Mapping[str, object]) -> dict[str, object]:
    scheduler = routing.get("scheduler")
    settings = scheduler.get("settings") if isinstance(scheduler, dict) else None
    fifo = settings.get("fifo") if isinstance(settings, dict) else None
    return fifo if isinstance(fifo, dict) else {}


def _priorities(fifo: Mapping[str, object], model_ids: set[str]) -> dict[str, int]:
    # Problems (unknown models, non-integers) are reported by selection.read_routing.
    raw = fifo.get("priority")
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): v
        for k, v in raw.items()
        if k in model_ids and isinstance(v, int) and not isinstance(v, bool)
    }


def _fit(raw: object, use: RouterKind, model_ids: set[str], out: Collector) -> FitConfig:
    if raw is None:
        return FitConfig()
    if use is not RouterKind.FIT:
        out.warn(FIT_PATH, "ignored: routing.router.use is not fit — set use: fit to apply it")
    section = read_map(out, FIT_PATH, raw)
    warn_unknown(out, FIT_PATH, section, FIT_KEYS)
    budget_raw = section.get("budgetMiB")
    budget = (
        None
        if budget_raw is None
        else read_int(out, (*FIT_PATH, "budgetMiB"), budget_raw, 0, 1, "MiB")
    )
    keep = read_str_list(out, (*FIT_PATH, "keep"), section.get("keep"))
    for i, model in enumerate(keep):
        if model not in model_ids:
            known = ", ".join(sorted(model_ids))
            out.error((*FIT_PATH, "keep", i), f'unknown model "{model}"; known models: {known}')
    return FitConfig(
        budget_mib=budget,
        reserve_mib=read_int(
            out, (*FIT_PATH, "reserveMiB"), section.get("reserveMiB"), 0, 0, "MiB"
        ),
        keep=tuple(keep),
    )
