"""dcgm-exporter's exposition (tests/fixtures/dcgm_exporter_metrics.txt: its default counters, labels
and HELP lines, with the Kubernetes pod mapping) as GPU samples."""

from __future__ import annotations

from streams.input.dcgm import ServingRule, gpu_samples, gpu_type_of
from streams.input.events import parse_gpu
from tests.conftest import ROOT

PAGE = (ROOT / "tests" / "fixtures" / "dcgm_exporter_metrics.txt").read_text()
PRICES = {"default": 2.5, "H100": 4.0, "H200": 5.0, "A100": 2.0, "L4": 0.8}


def test_each_gpu_a_pod_holds_is_one_sample_and_an_idle_one_is_skipped():
    samples, skipped = gpu_samples(PAGE, ts=1_764_590_400.0, team_label="namespace", run_label="pod",
                                   interval_s=15, gpu_types=PRICES)
    assert skipped == 1  # GPU 3 has no pod on it
    assert [(s["team"], s["run_id"]) for s in samples] == [("research", "ft-llama-7b-0")] * 2 + \
        [("search", "embed-batch-2")]
    first = samples[0]
    assert first["gpu_id"] == "GPU-3f5a9c1e-8b2d-4c7f-a1e6-0d9b7c5e2f41" and first["node"] == "gpu-node-a7"
    # The engine's active ratio (0.9506), not DCGM_FI_DEV_GPU_UTIL (97): the counter that measures work (issue "GPU").
    assert (first["utilization"], first["power_w"], first["memory_used_mb"]) == (95.06, 512.4, 71234.0)
    assert first["gpu_type"] == "H100" and first["interval_s"] == 15
    for sample in samples:
        parsed = parse_gpu(sample, now=1_764_590_400.0)
        assert parsed.gpu_type == "H100" and parsed.interval_s == 15


def test_a_job_label_can_name_the_run():
    samples, _ = gpu_samples(PAGE, ts=1.7e9, team_label="namespace", run_label="container", interval_s=15)
    assert {s["run_id"] for s in samples} == {"trainer", "embedder"}


def test_the_gpu_type_is_the_price_lists_name_as_a_whole_word():
    assert gpu_type_of("NVIDIA A100-SXM4-80GB", PRICES) == "A100"
    assert gpu_type_of("NVIDIA L40S", PRICES) == "NVIDIA L40S"  # not an L4
    assert gpu_type_of("NVIDIA L4", PRICES) == "L4"
    assert gpu_type_of("NVIDIA H200", PRICES) == "H200"


def test_without_the_engine_active_ratio_the_coarse_utilization_is_used():
    coarse = "\n".join(line for line in PAGE.splitlines() if "DCGM_FI_PROF_GR_ENGINE_ACTIVE" not in line)
    samples, _ = gpu_samples(coarse, ts=1.7e9, team_label="namespace", run_label="pod", interval_s=15)
    assert samples[0]["utilization"] == 97.0


def test_gpus_of_a_serving_container_are_an_endpoint_named_by_its_deployment():
    page = (PAGE.replace('container="embedder"', 'container="vllm"')
            .replace('pod="embed-batch-2"', 'pod="chat-vllm-7d9f8c6b5-x2x9q"'))
    samples, skipped = gpu_samples(page, ts=1.7e9, team_label="namespace", run_label="pod", interval_s=15,
                                   serving=ServingRule())
    assert skipped == 1
    assert [(s["team"], s.get("run_id"), s.get("endpoint")) for s in samples] == \
        [("research", "ft-llama-7b-0", None)] * 2 + [("search", None, "chat-vllm")]
    assert parse_gpu(samples[2], now=1.7e9).endpoint == "chat-vllm"
