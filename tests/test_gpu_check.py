"""The GPU check (bench/gpu_check.sh): its dry run on the CPU end to end, so that the script
keeps working while no GPU is at hand, and the parts a dry run cannot reach (a step that
hangs, a missing VapourSynth, test modules that need it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vsdain.benchmark import gpu_check, gpu_steps

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "gpu_check.sh"
# What the dry run must report for each step on a machine without CUDA.
DRY_RUN_STATUSES = {
    "environment": "ok",
    "cuda-tests": "skipped",
    "kernels": "skipped",
    "frames": "ok",
    "batch": "ok",
    "busy": "skipped",
}
SCREEN_LINES = 24


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answers")
def test_the_dry_run_writes_its_files_and_a_one_screen_summary(tmp_path):
    out = tmp_path / "gpu-check"
    completed = subprocess.run(
        [str(SCRIPT), str(out), "--dry-run"],
        env={**os.environ, "PYTHON": sys.executable, "VSDAIN_WHEELS": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=gpu_check.TOTAL_LIMIT_S + 30,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert sorted(path.name for path in out.iterdir()) == sorted(gpu_check.OUTPUT_FILES)
    assert len(gpu_check.OUTPUT_FILES) <= 8
    summary = (out / gpu_check.SUMMARY).read_text()
    assert completed.stdout == summary  # printed, and nothing else on stdout
    assert len(summary.splitlines()) <= SCREEN_LINES
    assert "dry run" in summary
    results = json.loads((out / gpu_check.RESULTS).read_text())
    assert results["dry_run"] is True
    statuses = {name: step["status"] for name, step in results["steps"].items()}
    assert statuses == DRY_RUN_STATUSES
    for name, status in DRY_RUN_STATUSES.items():
        assert any(line.split()[:2] == [name, status] for line in summary.splitlines()), name
    steps = results["steps"]
    assert "needs CUDA" in steps["kernels"]["summary"]
    assert "needs CUDA" in steps["busy"]["summary"]  # the filter itself ran
    assert steps["busy"]["data"]["seconds_per_frame"] > 0
    assert steps["batch"]["data"]["max_difference"] == 0.0  # bit-exact on the CPU
    frames = {row["precision"]: row for row in steps["frames"]["data"]["rows"]}
    assert frames["float16"]["skipped"] == "needs CUDA"
    assert frames["float32"]["peak_bytes"] > 0
    report = (out / gpu_check.REPORT).read_text()
    for heading in ("## Environment", "## CUDA tests", "## Kernels", "## Time and peak memory"):
        assert heading in report
    assert "-m cuda" in (out / gpu_check.TESTS).read_text()


def test_a_step_that_hangs_costs_its_limit_and_is_killed(tmp_path):
    result = tmp_path / "step.json"
    marker = tmp_path / "child-ran-on"
    # The step starts a child of its own, which must die with it.
    script = tmp_path / "hang.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = \"import sys, time; time.sleep(2); open(sys.argv[1], 'w').close()\"\n"
        "subprocess.Popen([sys.executable, '-c', child, sys.argv[1]])\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, str(script), str(marker)]
    with open(tmp_path / "log", "w") as log:
        start = time.monotonic()
        outcome = gpu_check.run_step_process("hang", command, 1, result, log)
    assert outcome["status"] == "timed out"
    assert time.monotonic() - start < 4
    time.sleep(max(0.0, start + 3.0 - time.monotonic()))  # past the child's 2 s
    assert not marker.exists()


def test_a_step_that_crashes_is_reported_failed(tmp_path):
    with open(tmp_path / "log", "w") as log:
        outcome = gpu_check.run_step_process(
            "crash", [sys.executable, "-c", "raise SystemExit(3)"], 30, tmp_path / "r.json", log
        )
    assert outcome["status"] == "failed" and "3" in outcome["summary"]


def test_without_vapoursynth_only_the_filter_level_step_is_skipped(tmp_path):
    outcome = gpu_steps.busy(gpu_check.StepOptions(dry_run=True, vapoursynth=False, out=tmp_path))
    assert outcome.status == "skipped"
    assert "VapourSynth is not installed" in outcome.summary
    assert "bench/gpu_check.sh" in outcome.summary  # where to learn how to carry the wheel


def test_test_modules_that_need_vapoursynth_are_counted_apart(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(
        """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="" name="tests.test_filter"><error message="collection failure">
ModuleNotFoundError: No module named 'vapoursynth'</error></testcase>
<testcase classname="tests.test_op_warping" name="test_a[cuda]"/>
<testcase classname="tests.test_op_warping" name="test_b[cuda]"><failure message="x"/></testcase>
<testcase classname="tests.test_op_warping" name="test_c[cuda]"><skipped message="s"/></testcase>
<testcase classname="" name="tests.test_broken"><error message="collection failure">
SyntaxError</error></testcase>
</testsuite></testsuites>"""
    )
    assert gpu_steps._junit_counts(junit) == {
        "passed": 1,
        "failed": 1,
        "errors": 1,
        "skipped": 1,
        "needs_vapoursynth": 1,
    }


def test_busy_time_is_the_union_of_kernel_intervals(tmp_path):
    trace = tmp_path / "trace.json"
    events = [
        {"cat": "kernel", "ts": 0, "dur": 10},
        {"cat": "kernel", "ts": 5, "dur": 10},  # overlaps the first: counted once
        {"cat": "kernel", "ts": 30, "dur": 5},
        {"cat": "gpu_memcpy", "ts": 12, "dur": 4},
        {"cat": "cpu_op", "ts": 0, "dur": 100},
    ]
    trace.write_text(json.dumps({"traceEvents": events}))
    kernel_s, copy_s = gpu_steps._trace_busy(trace)
    assert kernel_s == pytest.approx(20e-6) and copy_s == pytest.approx(4e-6)


@pytest.mark.slow  # starts a process that imports PyTorch
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer without a GPU")
def test_without_a_gpu_the_check_says_so_and_exits_2(tmp_path, capsys):
    assert gpu_check.run(gpu_check.StepOptions(dry_run=False, vapoursynth=False, out=tmp_path)) == 2
    summary = capsys.readouterr().out
    assert "PyTorch sees no CUDA GPU" in summary and "--dry-run" in summary
    assert (tmp_path / gpu_check.SUMMARY).read_text() == summary


def test_the_cuda_tests_step_runs_only_the_suite_it_is_given(tmp_path):
    given = gpu_check.StepOptions(dry_run=True, vapoursynth=False, out=tmp_path)
    outcome = gpu_steps.cuda_tests(given)
    assert outcome.status == "skipped" and "--tests" in outcome.summary
    elsewhere = gpu_check.StepOptions(dry_run=True, vapoursynth=False, out=tmp_path, tests=tmp_path)
    outcome = gpu_steps.cuda_tests(elsewhere)
    assert outcome.status == "failed" and str(tmp_path) in outcome.summary
