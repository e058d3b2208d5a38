"""Routing micro-benchmark: µs per Router.match() decision for 10, 100 and 1,000 rules.

Run `python -m swapgate.bench.route_bench [--json PATH]`. Each figure is the median over repeats of
(time for a batch of decisions) / batch size, measured with time.perf_counter_ns.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from swapgate.router import (
    Arm,
    ExactText,
    Match,
    RegexText,
    RequestFacts,
    Router,
    Rule,
    Sticky,
    StickySource,
    compile_rules,
)

SIZES = (10, 100, 1000)
REPEATS = 7
BATCH_SECONDS = 0.02
NAMES = {"a": "a", "b": "b", "chat": "b"}
CHAT = "/v1/chat/completions"

Case = Callable[[int], tuple[Router, Callable[[int], RequestFacts]]]


def _fixed(facts: RequestFacts) -> Callable[[int], RequestFacts]:
    return lambda _: facts


def exact_hit(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """n exact-model rules; the request hits the last one."""
    rules = [Rule(match=Match(model=ExactText(f"m{i}")), to="a") for i in range(n)]
    return compile_rules(rules, NAMES), _fixed(RequestFacts(f"m{n - 1}", CHAT, {}))


def regex_hit(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """n model-regex rules; the request matches only the last one."""
    rules = [Rule(match=Match(model=RegexText(f"fam{i}-.*")), to="a") for i in range(n)]
    return compile_rules(rules, NAMES), _fixed(RequestFacts(f"fam{n - 1}-8b", CHAT, {}))


def header_hit(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """n rules on one model that differ by an exact header; the request hits the last."""
    rules = [
        Rule(
            match=Match(model=ExactText("chat"), headers=(("X-Tenant", ExactText(f"t{i}")),)),
            to="a",
        )
        for i in range(n)
    ]
    facts = RequestFacts("chat", CHAT, {"x-tenant": f"t{n - 1}"})
    return compile_rules(rules, NAMES), _fixed(facts)


def _split_rules(n: int) -> list[Rule]:
    fillers = [Rule(match=Match(model=ExactText(f"m{i}")), to="a") for i in range(n - 1)]
    split = Rule(
        name="ab",
        match=Match(model=ExactText("chat")),
        split=(Arm("a", 70), Arm("b", 30)),
        sticky=Sticky(StickySource.HEADER, "X-User-Id"),
    )
    return [*fillers, split]


def split_sticky(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """A sticky split after n-1 other rules; the request carries a sticky key."""
    facts = RequestFacts("chat", CHAT, {"x-user-id": "user-42"})
    return compile_rules(_split_rules(n), NAMES), _fixed(facts)


def split_random(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """The same split without a sticky key: weighted random."""
    return compile_rules(_split_rules(n), NAMES), _fixed(RequestFacts("chat", CHAT, {}))


def _mixed_rules(n: int) -> list[Rule]:
    """Exact, regex, header and split rules in equal parts; none of them accepts model `a`."""
    rules: list[Rule] = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            match = Match(model=ExactText(f"m{i}"))
        elif kind == 1:
            match = Match(model=RegexText(f"fam{i}-.*"))
        else:
            match = Match(model=ExactText("chat"), headers=(("X-Tenant", ExactText(f"t{i}")),))
        if kind == 3:
            rules.append(Rule(match=match, split=(Arm("a", 1), Arm("b", 1))))
        else:
            rules.append(Rule(match=match, to="b"))
    return rules


def worst_fallback(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """No rule matches: the model id `a` falls through to the id/alias lookup."""
    return compile_rules(_mixed_rules(n), NAMES), _fixed(RequestFacts("a", CHAT, {}))


def worst_new_names(n: int) -> tuple[Router, Callable[[int], RequestFacts]]:
    """No rule matches and every model name is new, so every model regex runs each time."""
    return compile_rules(_mixed_rules(n), NAMES), lambda i: RequestFacts(f"new-{i}", CHAT, {})


CASES: dict[str, Case] = {
    "exact hit": exact_hit,
    "regex hit": regex_hit,
    "header hit": header_hit,
    "split sticky": split_sticky,
    "split random": split_random,
    "worst: fallback to id": worst_fallback,
    "worst: new name each time": worst_new_names,
}


def measure(router: Router, request: Callable[[int], RequestFacts]) -> float:
    """Median µs per decision over REPEATS batches sized to about BATCH_SECONDS each."""
    requests = [request(i) for i in range(1000)]
    offset = len(requests)
    match = router.match
    start = time.perf_counter_ns()
    for facts in requests:
        match(facts)
    per_call_ns = max((time.perf_counter_ns() - start) / len(requests), 1.0)
    batch = max(1000, int(BATCH_SECONDS * 1e9 / per_call_ns))
    results: list[float] = []
    for _ in range(REPEATS):
        # Fresh indices per batch, so a case that varies its requests never repeats one.
        batch_requests = [request(offset + i) for i in range(batch)]
        offset += batch
        start = time.perf_counter_ns()
        for facts in batch_requests:
            match(facts)
        results.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(results)


def run() -> list[dict[str, object]]:
    """Every case at every size, as records."""
    records: list[dict[str, object]] = []
    for case, build in CASES.items():
        for size in SIZES:
            router, request = build(size)
            records.append(
                {"case": case, "rules": size, "us_per_decision": measure(router, request)}
            )
    return records


def table(records: list[dict[str, object]]) -> str:
    """A fixed-width table: one row per case, one column per rule count."""
    width = max(len(case) for case in CASES) + 2
    lines = ["µs/decision".ljust(width) + "".join(f"{n:>12,} rules" for n in SIZES)]
    for case in CASES:
        cells = [r["us_per_decision"] for r in records if r["case"] == case]
        lines.append(
            case.ljust(width) + "".join(f"{c:>18.3f}" for c in cells if isinstance(c, float))
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the table and optionally write the records as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    records = run()
    print(table(records))
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
