"""One GPU per trial on a multi-GPU machine (e.g. resnet_cifar10's 4 workers on a
g4dn.12xlarge): without it every trial would train on GPU 0."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stbench.backends.gpus import HOST_GPUS_ENV, least_busy, visible_gpus
from stbench.backends.process.backend import LocalProcessBackend


def test_each_new_trial_gets_the_least_busy_gpu() -> None:
    gpus = ["0", "1", "2", "3"]
    running: list[str | None] = []
    for _ in range(4):
        running.append(least_busy(gpus, running))
    assert running == ["0", "1", "2", "3"]
    running.remove("2")  # that trial ended: its GPU is the free one
    assert least_busy(gpus, running) == "2"
    assert least_busy(gpus, [*running, "2"]) == "0"  # all busy once: spread evenly


def test_no_gpus_means_no_assignment() -> None:
    assert least_busy([], ["0"]) is None


def test_visible_gpus_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOST_GPUS_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # the CUDA way of saying "none"
    assert visible_gpus() == []
    monkeypatch.setenv(HOST_GPUS_ENV, "0,1")  # what a containerized orchestrator is told
    assert visible_gpus() == ["0", "1"]
    monkeypatch.setenv(HOST_GPUS_ENV, "")
    assert visible_gpus() == []


def test_local_trials_see_one_gpu_each(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """The local back-end gives each running trial's process its own CUDA_VISIBLE_DEVICES."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    script = tmp_path / "show.py"
    script.write_text("import os, time\nfrom syne_tune import Reporter\n"
                      "Reporter()(epoch=1, gpu=float(os.environ['CUDA_VISIBLE_DEVICES']))\n"
                      "time.sleep(1.5)\n")  # still running when the next trial starts
    backend = LocalProcessBackend(script, tmp_path / "trials")
    try:
        backend.start_supervisor()
        ids = [backend.start_trial({"x": i}).trial_id for i in range(2)]
        deadline = time.monotonic() + 30
        while backend.busy_trial_ids():
            assert time.monotonic() < deadline, "trials did not finish"
            backend.wait_for_activity(0.5)
        _, results = backend.fetch_status_results(ids)
        assert sorted(r["gpu"] for _, r in results) == [0.0, 1.0]
    finally:
        backend.close()
