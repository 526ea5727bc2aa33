"""`make eval`: recall, false incidents, time to detect and runaway lead time, over several seeds,
plus false alarms on the real Azure LLM traces with and without injected spikes.

Run: `python -m evaluation.run [--seeds 11 12 13] [--days 4]`. Method and results: docs/detection.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors.poisson import min_significant_count
from evaluation.budgets import budget_scenario
from evaluation.gpu_idle import gpu_idle_scenario
from evaluation.serving import serving_scenario
from evaluation.unit_costs import unit_cost_scenario
from evaluation.workload import USAGE_ORDER, Spike, Workload, generate
from streams.settings import Settings
from streams.tools.replay import detect

AZURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "llm"
DETECT_WITHIN_S = 300.0


def seconds(rfc3339: str) -> float:
    return datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def provable_within_5_minutes(spike: Spike, alpha: float = 1e-6) -> bool:
    """A surge on a quiet key (under a call a window) whose five windows pass the Poisson test 9 times in 10.

    Below that, no test at `alpha` can prove it in time, whatever the detector does.
    """
    expected = 5 * spike.expected_calls
    if spike.kind != "traffic" or spike.expected_calls >= 1 or expected <= 0:
        return False
    bar = min_significant_count(expected, alpha)
    surge = spike.factor * expected
    below = sum(math.exp(-surge) * surge ** k / math.factorial(k) for k in range(bar))
    return 1 - below >= 0.9


def score_spikes(workload: Workload, alerts: list[dict[str, Any]],
                 eligible_if: Callable[[Spike], bool] = lambda spike: spike.eligible,
                 within_s: float = DETECT_WITHIN_S, after_s: float = DETECT_WITHIN_S) -> dict[str, Any]:
    """`within_s`: how soon after its start a spike counts as caught; `after_s`: how long after its end
    an alert still belongs to it."""
    firing = [a for a in alerts if a["kind"] == "flash_spike" and a["status"] == "firing"]
    matched: set[int] = set()
    delays, caught, eligible = [], 0, 0
    incidents: list[int] = []  # firing alerts per labelled spike that raised any: above 1 is flapping
    why = {"cause_right": 0, "cause_judged": 0, "named_right": 0, "named_judged": 0, "misnamed": []}
    for spike in workload.spikes:
        hits = [i for i, a in enumerate(firing)
                if (a["team"], a["endpoint"]) == (spike.team, spike.endpoint)
                and spike.start - 60 <= seconds(a["ts"]) <= spike.end + after_s]
        matched.update(hits)
        if hits:
            incidents.append(len(hits))
        if not eligible_if(spike):
            continue
        eligible += 1
        if hits:
            first = min(hits, key=lambda i: seconds(firing[i]["ts"]))
            delay = seconds(firing[first]["ts"]) - spike.start
            delays.append(delay)
            caught += delay <= within_s
            _score_why(spike, firing[first], why)
    false = len(firing) - len(matched)
    key_weeks = workload.keys * workload.days / 7
    return {"eligible": eligible, "caught": caught, "delays": delays, "false": false, "key_weeks": key_weeks,
            "ineligible": len(workload.spikes) - eligible, "incidents": incidents, **why}


def _score_why(spike: Spike, alert: dict[str, Any], why: dict[str, Any]) -> None:
    """Does the first alert of a caught spike name its kind, and first the user, service or model injected?"""
    why["cause_judged"] += 1
    why["cause_right"] += alert.get("cause") == spike.cause
    if spike.contributor is None:
        return
    why["named_judged"] += 1
    named = alert.get("contributors") or []
    first = (named[0]["dimension"], named[0]["value"]) if named else None
    if first == spike.contributor:
        why["named_right"] += 1
    else:
        why["misnamed"].append((spike.team, spike.endpoint, spike.kind, spike.contributor, alert.get("cause"),
                                named[:3]))


def summed(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """`score_spikes`' results over several seeds: counts added, lists joined."""
    total: dict[str, Any] = {}
    for score in scores:
        for key, value in score.items():
            total[key] = total[key] + value if key in total else (list(value) if isinstance(value, list) else value)
    return total


def incidents_per_spike(totals: dict[str, Any]) -> float:
    """Firing alerts per labelled spike that raised any: above 1 is flapping."""
    return sum(totals["incidents"]) / max(1, len(totals["incidents"]))


def why_line(totals: dict[str, Any]) -> str:
    return (f"cause named right {totals['cause_right']}/{totals['cause_judged']}; contributor named first is "
            f"the injected one {totals['named_right']}/{totals['named_judged']}")


def score_runs(workload: Workload, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    first_alert = {}
    for alert in alerts:
        if alert["kind"] == "runaway_training" and alert["status"] == "firing":
            first_alert.setdefault(alert["run_id"], seconds(alert["ts"]))
    out: dict[str, Any] = {"on_time_alerted": 0, "on_time": 0, "overrun_ok": 0, "overrun": 0,
                           "doubled_ok": 0, "doubled": 0, "lead_s": [], "doubling_delay_s": []}
    for run in workload.runs:
        at = first_alert.get(run.run_id)
        if run.fate == "on_time":
            out["on_time"] += 1
            out["on_time_alerted"] += at is not None
        elif run.fate == "too_long":
            out["overrun"] += 1
            limit_at = next((t for t, cost in run.cost_curve if cost >= 1.5 * run.estimate_usd), None)
            if at is not None and limit_at is not None and at < limit_at:
                out["overrun_ok"] += 1
                out["lead_s"].append(limit_at - at)
        else:
            out["doubled"] += 1
            if at is not None and run.change_at is not None:
                delay = at - run.change_at
                out["doubling_delay_s"].append(delay)
                out["doubled_ok"] += 0 <= delay <= 900
    return out


def azure_rows(name: str, tiles: int, spikes: list[tuple[float, float, float]], seed: int) -> tuple[list, int]:
    """The trace as usage rows for one key (priced like gpt-4o), repeated `tiles` hours back to back;
    each (start offset s, length s, factor) in `spikes` multiplies the calls in that span."""
    stamps, prompt, completion = [], [], []
    with open(AZURE / f"AzureLLMInferenceTrace_{name}_2023.csv") as f:
        for row in csv.DictReader(f):
            stamps.append(datetime.fromisoformat(row["TIMESTAMP"][:26]).replace(tzinfo=UTC).timestamp())
            prompt.append(int(row["ContextTokens"]))
            completion.append(int(row["GeneratedTokens"]))
    ts0 = min(stamps)
    hour = 3600.0
    rng = np.random.default_rng(seed)
    rows = []
    for tile in range(tiles):
        for t, p, c in zip(stamps, prompt, completion, strict=False):
            at = t - ts0 + tile * hour
            copies = 1
            for start, length, factor in spikes:
                if start <= at < start + length:
                    copies = int(factor) + (rng.random() < factor - int(factor))
            for copy in range(copies):
                jitter = 0.0 if copy == 0 else float(rng.uniform(-0.5, 0.5))
                when = ts0 + at + jitter
                cost = (p * 2.5 + c * 10.0) / 1e6
                rows.append((when, USAGE_ORDER, len(rows), "azure",
                             [0, name, when, p, c, cost, 0, 0, "azure-llm", "", "", "", ""]))
    rows.sort(key=lambda r: (r[0], r[2]))
    return rows, len(stamps)


def fmt_minutes(values: list[float], worst=max) -> str:
    """Median and worst; for a lead time the worst is the shortest (`worst=min`)."""
    if not values:
        return "n/a"
    return f"median {statistics.median(values) / 60:.1f} min, worst {worst(values) / 60:.1f} min"


def main_scenario(args: argparse.Namespace, settings: Settings) -> None:
    """The labelled workload at the default settings: spikes, false incidents, runaway runs."""
    scores = []
    runs_total: dict[str, Any] = {}
    for seed in args.seeds:
        started = time.perf_counter()
        workload = generate(seed, days=args.days, min_usd=settings.spike_min_usd,
                            min_tokens=settings.spike_min_tokens, window_s=settings.window_seconds)
        alerts = list(detect(workload.rows, settings))
        spikes = score_spikes(workload, alerts)
        runs = score_runs(workload, alerts)
        scores.append(spikes)
        for k, v in runs.items():
            runs_total[k] = runs_total.get(k, [] if isinstance(v, list) else 0) + v
        print(f"seed {seed}: {len(workload.rows):,} events, {spikes['caught']}/{spikes['eligible']} spikes caught "
              f"within 5 min ({fmt_minutes(spikes['delays'])}), {spikes['false']} false incidents over "
              f"{spikes['key_weeks']:.1f} key-weeks, runs: overrun flagged in time {runs['overrun_ok']}/"
              f"{runs['overrun']}, doubling within 15 min {runs['doubled_ok']}/{runs['doubled']}, on-time runs "
              f"alerted {runs['on_time_alerted']}/{runs['on_time']} [{time.perf_counter() - started:.0f}s]")

    totals = summed(scores)
    recall = totals["caught"] / totals["eligible"] if totals["eligible"] else 0.0
    print("\nall seeds:")
    print(f"  recall (10-20x spikes caught within 5 min): {totals['caught']}/{totals['eligible']} = {recall:.1%} "
          f"({totals['ineligible']} spikes below the minimum spend/tokens not counted)")
    print(f"  time to detect: {fmt_minutes(totals['delays'])}")
    print(f"  why (spikes that raised an alert): {why_line(totals)}")
    for miss in totals["misnamed"]:
        print(f"    named otherwise: {miss}")
    print(f"  false incidents: {totals['false']} over {totals['key_weeks']:.1f} key-weeks = "
          f"{totals['false'] / totals['key_weeks']:.2f} per key-week")
    incidents = totals["incidents"]
    if incidents:
        print(f"  incidents per labelled spike that raised one: {incidents_per_spike(totals):.2f} "
              f"({sum(n > 1 for n in incidents)} of {len(incidents)} spikes raised more than one: flapping)")
    print(f"  runaway: overruns flagged before 1.5x {runs_total['overrun_ok']}/{runs_total['overrun']} "
          f"(lead before 1.5x: {fmt_minutes(runs_total['lead_s'], worst=min)}); doublings flagged within 15 min "
          f"{runs_total['doubled_ok']}/{runs_total['doubled']} ({fmt_minutes(runs_total['doubling_delay_s'])}); "
          f"on-time runs alerted {runs_total['on_time_alerted']}/{runs_total['on_time']}")


def quiet_scenario(args: argparse.Namespace, settings: Settings) -> None:
    """Quiet keys judged on statistics alone: the money floors set to 0."""
    print("\nquiet keys (under a call a minute), statistics only (no minimum spend or tokens):")
    quiet_settings = Settings(_env_file=None, spike_min_usd=0.0, spike_min_tokens=0.0)
    scores = []
    for seed in args.seeds:
        workload = generate(seed, days=args.days, min_usd=0.0, min_tokens=0.0, window_s=settings.window_seconds,
                            with_runs=False)
        spikes = score_spikes(workload, list(detect(workload.rows, quiet_settings)), provable_within_5_minutes)
        scores.append(spikes)
        print(f"  seed {seed}: {spikes['caught']}/{spikes['eligible']} provable quiet-key surges caught within 5 min "
              f"({fmt_minutes(spikes['delays'])}), {spikes['false']} false incidents over all "
              f"{spikes['key_weeks']:.1f} key-weeks")
    quiet = summed(scores)
    if quiet["eligible"]:
        print(f"  all seeds: {quiet['caught']}/{quiet['eligible']} = {quiet['caught'] / quiet['eligible']:.1%} "
              f"({fmt_minutes(quiet['delays'])}); false incidents {quiet['false'] / quiet['key_weeks']:.2f} per "
              f"key-week; incidents per spike that raised one {incidents_per_spike(quiet):.2f}")
        print(f"  why: {why_line(quiet)}")
        for miss in quiet["misnamed"]:
            print(f"    named otherwise: {miss}")


def lumpy_scenario(args: argparse.Namespace) -> None:
    """Lumpy metered series: one event a period, the window set to the period, default ratio."""
    from evaluation.workload import generate_metered

    print("\nlumpy metered series (one event per period, amounts varying 3-5x; window = period):")
    for period_s, label in ((300, "5-minute cloud meter"), (3600, "hourly meter")):
        settings = Settings(_env_file=None, window_seconds=period_s)
        for with_jumps in (False, True):
            scores = []
            for seed in args.seeds:
                workload = generate_metered(seed, period_s=period_s, with_jumps=with_jumps)
                scores.append(score_spikes(workload, list(detect(workload.rows, settings)), lambda spike: True,
                                           within_s=3 * period_s, after_s=3 * period_s))
            total = summed(scores)
            periods = [delay / period_s for delay in total["delays"]]
            jumps = (f"{len(periods)}/{total['eligible']} 10-20x jumps of 12-36 periods caught, after a median "
                     f"{statistics.median(periods or [0]):.1f} periods (worst {max(periods or [0]):.1f}); "
                     f"{total['caught']} within two events of their start; incidents per caught jump "
                     f"{incidents_per_spike(total):.2f}; " if with_jumps else "")
            print(f"  {label}, {'with' if with_jumps else 'no'} jumps: {jumps}{total['false']} false incidents over "
                  f"{total['key_weeks']:.0f} key-weeks ({total['false'] / total['key_weeks']:.2f} per key-week)")


def issue39_scenario(args: argparse.Namespace) -> None:
    """Issue 39's failure modes, statistics only (no minimum spend or tokens): price jumps with calls
    unchanged, 10-12x and 4-6x surges on slow keys, bursty metered series."""
    from evaluation.workload import generate_bursty_metered, generate_price_jumps, generate_slow_surges

    stats_only = Settings(_env_file=None, spike_min_usd=0.0, spike_min_tokens=0.0)
    print("\nprice jumps of 5-40x per call, calls unchanged, 20-60 min, keys of 0.5-200 calls a minute "
          "(statistics only):")
    scores = []
    for seed in args.seeds:
        workload = generate_price_jumps(seed)
        alerts = list(detect(workload.rows, stats_only))
        slow = score_spikes(workload, alerts, lambda spike: spike.expected_calls < 2, within_s=600)
        fast = score_spikes(workload, alerts, lambda spike: spike.expected_calls >= 2, within_s=300)
        every = score_spikes(workload, alerts, lambda spike: True, within_s=3600)
        scores.append({"slow_caught": slow["caught"], "slow": slow["eligible"], "fast_caught": fast["caught"],
                       "fast": fast["eligible"], "any": len(slow["incidents"]), "false": slow["false"],
                       "key_weeks": slow["key_weeks"], "delays": every["delays"], "cause_right": every["cause_right"],
                       "cause_judged": every["cause_judged"]})
        print(f"  seed {seed}: under 2 calls/min {slow['caught']}/{slow['eligible']} within 10 min, "
              f"others {fast['caught']}/{fast['eligible']} within 5 min; {slow['false']} false incidents")
    total = summed(scores)
    print(f"  all seeds: {total['slow_caught'] + total['fast_caught']}/{total['slow'] + total['fast']} caught in "
          f"time, {total['any']}/{total['slow'] + total['fast']} ever ({fmt_minutes(total['delays'])}); cause "
          f"right {total['cause_right']}/{total['cause_judged']}; false incidents {total['false']} over "
          f"{total['key_weeks']:.1f} key-weeks")
    print("\nsurges on keys of 0.5-5 calls a minute, 15-30 min (statistics only):")
    for factors in ((10.0, 12.0), (4.0, 5.0, 6.0)):
        scores = []
        for seed in args.seeds:
            workload = generate_slow_surges(seed, factors)
            scores.append(score_spikes(workload, list(detect(workload.rows, stats_only)), lambda spike: True,
                                       within_s=900))
        total = summed(scores)
        print(f"  {'/'.join(f'{f:g}' for f in factors)}x: {len(total['incidents'])}/{total['eligible']} fired "
              f"({total['caught']} within 15 min, {fmt_minutes(total['delays'])}); {total['false']} false incidents "
              f"over {total['key_weeks']:.1f} key-weeks")
    print("\nbursty hourly metered series (3-8x bursts as normal life, two 10x steps each; window = period):")
    hourly = Settings(_env_file=None, window_seconds=3600)
    for with_steps in (False, True):
        scores = []
        for seed in args.seeds:
            workload = generate_bursty_metered(seed, with_steps=with_steps)
            scores.append(score_spikes(workload, list(detect(workload.rows, hourly)), lambda spike: True,
                                       within_s=3 * 3600, after_s=3 * 3600))
        total = summed(scores)
        steps = (f"{len(total['incidents'])}/{total['eligible']} steps caught ({total['caught']} within 3 periods); "
                 if with_steps else "")
        print(f"  {'with' if with_steps else 'no'} steps: {steps}{total['false']} false incidents over "
              f"{total['key_weeks']:.0f} series-weeks ({total['false'] / total['key_weeks']:.2f} per series-week)")


def azure_scenario(settings: Settings) -> None:
    """The real Azure LLM traces: false alarms as recorded and tiled, and injected spikes."""
    if not AZURE.exists():
        return
    print("\nAzure LLM inference traces (one key each, priced like gpt-4o):")
    for name in ("code", "conv"):
        for tiles, label in ((1, "1 h as recorded"), (24, "24 h: the hour 24 times back to back")):
            rows, _n = azure_rows(name, tiles, [], seed=1)
            false = sum(a["status"] == "firing" for a in detect(rows, settings))
            print(f"  {name}, {label}: {len(rows):,} calls, {false} false alarms")
        factors = [10, 12, 15, 20, 10, 12, 15]
        spikes = [(3600 * h + 1800 + 97 * h, 900, f) for h, f in zip(range(4, 24, 3), factors, strict=True)]
        rows, _ = azure_rows(name, 24, spikes, seed=2)
        alerts = [a for a in detect(rows, settings) if a["status"] == "firing"]
        base = min(r[0] for r in rows)
        delays = []
        for start, length, _ in spikes:
            hits = [seconds(a["ts"]) - (base + start) for a in alerts
                    if base + start - 60 <= seconds(a["ts"]) <= base + start + length + DETECT_WITHIN_S]
            if hits:
                delays.append(min(hits))
        extra = len(alerts) - len(delays)
        caught = sum(d <= DETECT_WITHIN_S for d in delays)
        print(f"  {name}, 24 h with {len(spikes)} injected 10-20x spikes: {caught}"
              f"/{len(spikes)} caught within 5 min ({fmt_minutes(delays)}), {extra} other alerts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--only", choices=["main", "quiet", "lumpy", "issue39", "azure", "budgets", "unit_costs",
                                           "gpu_idle", "serving"],
                        help="one scenario only")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    print(f"settings: window {settings.window_seconds}s, ratio {settings.spike_ratio}, "
          f"min ${settings.spike_min_usd}/window or {settings.spike_min_tokens:,.0f} tokens/window")

    scenarios = {"main": lambda: main_scenario(args, settings), "quiet": lambda: quiet_scenario(args, settings),
                 "lumpy": lambda: lumpy_scenario(args), "issue39": lambda: issue39_scenario(args),
                 "azure": lambda: azure_scenario(settings), "budgets": lambda: budget_scenario(args.seeds),
                 # Tuned on seeds 1-5; its own seeds, as a week of hourly periods needs more than --days.
                 "unit_costs": lambda: unit_cost_scenario([101, 102, 103, 104, 105]),
                 # Tuned on seeds 101-115.
                 "gpu_idle": lambda: gpu_idle_scenario([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
                 "serving": lambda: serving_scenario([11, 12, 13])}
    for name, run in scenarios.items():
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
