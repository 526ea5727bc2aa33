"""NVIDIA dcgm-exporter's Prometheus page as GPU samples (CONTRACT.md's GPU sample).

Parsed with prometheus-client's text parser. Each GPU (its `UUID`, else `Hostname` and `gpu`
index) becomes one sample with the three fields spendwatch uses:

| sample field | from |
| --- | --- |
| `utilization` | `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (0-1, as %) where given, else `DCGM_FI_DEV_GPU_UTIL` (%) |
| `power_w` | `DCGM_FI_DEV_POWER_USAGE` (W) |
| `memory_used_mb` | `DCGM_FI_DEV_FB_USED` (MiB) |
| `gpu_id`, `node`, `gpu_type` | the `UUID` (else `Hostname:gpu`), `Hostname`, `modelName` labels |
| `team`, `run_id` | the labels `team_label` and `run_label` name (Kubernetes pod mapping: `namespace`, `pod`) |
| `endpoint` (instead of `run_id`) | for a serving GPU: see below |

`DCGM_FI_DEV_GPU_UTIL` is the share of time any kernel ran: it reads 100 for a GPU spinning one tiny
kernel, and only 0 or 100 on some GPUs. The graphics engine's active ratio (a profiling metric,
on by default in dcgm-exporter's counters file) measures work, so it wins where present.

A GPU is *serving* when its `serving.label` (default `container`) matches one of `serving.values`
(glob patterns: `vllm*`, `tgi*`, `triton*`...); its endpoint is its `serving.endpoint_label` (default
`pod`), less the suffixes Kubernetes adds to a Deployment's or StatefulSet's pods
(`chat-vllm-7d9f8c6b5-x2x9q` is `chat-vllm`), so all the replicas of one deployment are one endpoint.
Every other GPU a team holds is a training run's, named by `run_label`.

`gpu_type` is the price list's name found in `modelName` ("NVIDIA H100 80GB HBM3" is `H100`), else
`modelName` itself. A GPU no team or run holds (no pod on it) is skipped: nobody pays for it.

>>> page = ('DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1",modelName="NVIDIA H100 80GB HBM3",Hostname="n1",'
...         'namespace="research",pod="ft-7"} 93\\n')
>>> samples, skipped = gpu_samples(page, ts=1.7e9, team_label="namespace", run_label="pod", interval_s=15,
...                                gpu_types=["H100", "A100"])
>>> samples[0]["gpu_id"], samples[0]["gpu_type"], samples[0]["team"], samples[0]["utilization"], skipped
('GPU-1', 'H100', 'research', 93.0, 0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

FIELDS = {"DCGM_FI_DEV_GPU_UTIL": "utilization", "DCGM_FI_DEV_POWER_USAGE": "power_w",
          "DCGM_FI_DEV_FB_USED": "memory_used_mb"}
#: The engine's active ratio (0-1): the utilization that measures work, preferred where the exporter gives it.
ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
#: A Deployment's pod: <name>-<ReplicaSet hash>-<5 characters>; a StatefulSet's: <name>-<ordinal>.
_POD_SUFFIX = re.compile(r"(?:-[a-z0-9]{6,10}-[a-z0-9]{5}|-\d+)$")


@dataclass(frozen=True)
class ServingRule:
    """Which GPUs serve an endpoint, and its name (streams/settings.py's scrape_serving_* settings)."""

    label: str = "container"
    values: tuple[str, ...] = ("vllm*", "tgi*", "text-generation-inference*", "triton*", "sglang*", "kserve-container",
                               "*-serving*", "*inference*")
    endpoint_label: str = "pod"

    def endpoint_of(self, labels: dict[str, str]) -> str | None:
        """The serving endpoint of a GPU with these labels; None: not a serving GPU."""
        value = _label(labels, self.label)
        if not value or not any(fnmatchcase(value, pattern) for pattern in self.values):
            return None
        name = _label(labels, self.endpoint_label)
        if self.endpoint_label.lower() == "pod":
            name = _POD_SUFFIX.sub("", name) or name
        return name or None


def _label(labels: dict[str, str], name: str) -> str:
    """A label by name, whatever its case (dcgm-exporter has written both `Hostname` and `hostname`)."""
    if name in labels:
        return labels[name]
    lowered = name.lower()
    return next((value for key, value in labels.items() if key.lower() == lowered), "")


def gpu_type_of(model_name: str, known: Iterable[str]) -> str:
    """The price list's entry named in dcgm's `modelName`, longest match first; else the model name."""
    for name in sorted((k for k in known if k != "default"), key=len, reverse=True):
        # A whole word: "NVIDIA A100-SXM4-80GB" is an A100, "NVIDIA L40S" is not an L4.
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", model_name, re.IGNORECASE):
            return name
    return model_name


def metric_families(page: str) -> list[Any]:
    """The page's metric families; ValueError (what a scrape's caller handles) for anything the parser raises."""
    try:
        return list(text_string_to_metric_families(page))
    except Exception as exc:  # noqa: BLE001 - the parser raises IndexError, KeyError... on some malformed pages
        raise ValueError(f"not Prometheus text: {type(exc).__name__}") from None


def gpu_samples(page: str, ts: float, team_label: str, run_label: str, interval_s: float,
                gpu_types: Iterable[str] = (), serving: ServingRule | None = None) -> tuple[list[dict[str, Any]], int]:
    """The samples of one scrape, and how many GPUs were skipped for having no team, run or endpoint."""
    known = list(gpu_types)
    by_gpu: dict[str, dict[str, Any]] = {}
    for family in metric_families(page):
        for sample in family.samples:
            field = FIELDS.get(sample.name) or ("engine_active" if sample.name == ENGINE_ACTIVE else None)
            if field is None or not math.isfinite(sample.value):  # NaN is how an exporter says "no reading"
                continue
            labels = sample.labels
            node = _label(labels, "Hostname")
            gpu_id = _label(labels, "UUID") or f"{node}:{_label(labels, 'gpu')}"
            gpu = by_gpu.setdefault(gpu_id, {"labels": labels, "node": node})
            gpu[field] = float(sample.value)
    samples: list[dict[str, Any]] = []
    skipped = 0
    for gpu_id, gpu in by_gpu.items():
        labels = gpu.pop("labels")
        active = gpu.pop("engine_active", None)
        if active is not None:
            gpu["utilization"] = round(min(max(active, 0.0), 1.0) * 100, 3)
        team = _label(labels, team_label)
        endpoint = serving.endpoint_of(labels) if serving is not None else None
        subject = {"endpoint": endpoint} if endpoint else {"run_id": _label(labels, run_label)}
        if not team or not next(iter(subject.values())):
            skipped += 1
            continue
        row = {"ts": ts, "team": team, **subject, "gpu_id": gpu_id, "interval_s": interval_s, **gpu}
        if _label(labels, "modelName"):
            row["gpu_type"] = gpu_type_of(_label(labels, "modelName"), known)
        if not row["node"]:
            del row["node"]
        samples.append(row)
    return samples, skipped
