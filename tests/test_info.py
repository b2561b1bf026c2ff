"""``python -m vsdain info`` with the weights folder pointed at a temporary directory: its
report read from the command run in this process, and once run as a user would, in a child
process."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vsdain.cli_hint import command_hint
from vsdain.commands import main

REPO = Path(__file__).resolve().parent.parent


def run_info(weights_dir: Path) -> subprocess.CompletedProcess[str]:
    """``vsdain info`` run in this process: its exit status and what it wrote."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        patch.setenv("VSDAIN_WEIGHTS_DIR", str(weights_dir))
        returncode = main(["info"])
    args = ["vsdain", "info"]
    return subprocess.CompletedProcess(args, returncode, stdout.getvalue(), stderr.getvalue())


def run_info_as_a_user_would(weights_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VSDAIN_WEIGHTS_DIR": str(weights_dir)}
    return subprocess.run(
        [sys.executable, "-m", "vsdain", "info"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report_without_weights(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    weights_dir = tmp_path_factory.mktemp("no-weights")
    return weights_dir, run_info(weights_dir)


def test_exits_cleanly_with_report_on_stdout(report_without_weights):
    _, result = report_without_weights
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow  # a fresh Python that imports PyTorch
def test_python_m_vsdain_info_gives_the_same_report(report_without_weights):
    weights_dir, in_process = report_without_weights
    result = run_info_as_a_user_would(weights_dir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == in_process.stdout


def test_reports_versions(report_without_weights):
    _, result = report_without_weights
    import numpy
    import torch

    import vsdain

    rows = dict(re.findall(r"^  (\S+)\s+(.*)$", result.stdout, re.MULTILINE))
    assert rows["vsdain"] == vsdain.__version__
    assert rows["torch"].startswith(torch.__version__)
    assert rows["NumPy"] == numpy.__version__
    assert re.fullmatch(r"R\d+(\.\d+)?", rows["VapourSynth"])
    assert rows["CuPy"]  # a version, or "not installed"
    assert rows["Python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_reports_devices_and_op_path_for_the_cpu(report_without_weights):
    _, result = report_without_weights
    assert re.search(r"^  CPU\s+\d+ cores", result.stdout, re.MULTILINE)
    op_path = result.stdout.split("Op path\n", 1)[1].split("\n\n", 1)[0]
    # describe_backend's answer: "<backend>: <reason>".
    assert re.search(r"^  cpu\s+\S+: \S", op_path, re.MULTILINE), op_path


def test_reports_where_weights_were_looked_for(report_without_weights):
    weights_dir, result = report_without_weights
    assert f"{weights_dir / 'best.pth'}: not found" in result.stdout
    assert f"nothing; run `{command_hint('download')}`" in result.stdout


def test_reports_the_packaged_mirror_list(report_without_weights):
    _, result = report_without_weights
    manifest = REPO / "vsdain" / "data" / "manifest.tsv"
    assert re.search(rf"^  mirrors\s+{re.escape(str(manifest))} \(2 listed\)$", result.stdout, re.M)


def test_checks_the_weights_it_finds(tmp_path, random_weights):
    shutil.copyfile(random_weights, tmp_path / "best.pth")
    result = run_info(tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'best.pth'}: found" in result.stdout
    assert "OK (954 tensors match the DAIN network)" in result.stdout


def test_reports_a_broken_weights_file_without_failing(tmp_path):
    (tmp_path / "best.pth").write_bytes(b"PK\x03\x04 cut short")
    result = run_info(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FAILED: cannot read" in result.stdout
    assert "truncated or corrupt" in result.stdout
