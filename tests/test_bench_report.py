"""The benchmark's report, chart, tiling table and machine description from made-up results,
where every figure is known by hand, and MVTools timed on a tiny clip. The whole command
(``vsdain bench`` measuring a network) is in test_bench.py, in the slow tier."""

from __future__ import annotations

import datetime
import re

import pytest
import torch
import vapoursynth as vs
from PIL import Image

from vsdain.benchmark import chart, machine, mvtools, report, tiling
from vsdain.benchmark.flops import DevicePeak, NetworkFlops
from vsdain.benchmark.runner import ConfigResult, Results, SizeResult
from vsdain.benchmark.timing import Measurement, PartTimes

MIB = 2**20
MACHINE = machine.Machine(
    cpu="Test CPU 9000",
    cpu_cores=2,
    torch_threads=2,
    vapoursynth_threads=4,
    device="cpu",
    versions="Python 3.12, torch 2.x, VapourSynth R81",
)
# Per output frame at multi=2: ours 0.25 s, naive 1 s (4.0x), MVTools 10 ms.
CONFIG = ConfigResult(
    multi=2,
    ours=Measurement(0.25, 4, 100 * MIB),
    naive=Measurement(1.0, 2, 300 * MIB, note="1 of 2 synthesised frames timed"),
    mvtools=Measurement(0.01, 4, 20 * MIB),
)
# frame 10, pair 4, synthesis 2 GFLOP: naive 2*10 + 4 + 2 = 26, ours 10 + 4 + 2 = 16 per frame.
OPERATIONS = NetworkFlops(frame=10 * 10**9, pair=4 * 10**9, synthesize=2 * 10**9)
SIZE = SizeResult(
    width=64,
    height=48,
    padded=(128, 128),
    source="synthetic",
    parts=PartTimes(frame=0.1, pair=0.05, synthesize=0.02),
    operations=OPERATIONS,
    configs=[CONFIG],
    kernels=None,
)
TILING = tiling.TilingResults(
    rows=[
        tiling.TilingRow(64, 48, "untiled", "whole frame", 2 * 2**30, 2.0),
        tiling.TilingRow(64, 48, "forced", "64 px", 2**30, 3.0),
        tiling.TilingRow(64, 48, "automatic", "-", None, None, "skipped: no room"),
    ],
    costs=[tiling.PixelCosts(64, 48, 128 * 128, features=4096.0, timestamp=8192.0)],
)


@pytest.fixture
def results() -> Results:
    return Results(
        machine=MACHINE,
        started=datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC),
        weights="random (seed 0)",
        random_weights=True,
        peak=DevicePeak(matmul=100 * 10**9, conv=50 * 10**9),
        sizes=[SIZE],
        tiling=TILING,
        seconds=12.0,
    )


def table_rows(text: str) -> dict[str, list[str]]:
    return {
        cells[0]: cells[1:]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }


def test_the_report_holds_the_figures_and_their_ratios(results):
    text = report.render(results, "vsdain bench --sizes 64x48")
    assert text.startswith("# vsdain benchmark\n\n2026-01-02 03:04 UTC, `vsdain bench --sizes")
    assert "12 s in all" in text
    assert report.RANDOM_WEIGHTS_NOTE in text  # random weights are said to be random
    for line in MACHINE.lines():
        assert f"- {line}" in text
    time_section, rest = text.split("## Peak memory")
    rows = table_rows(time_section)
    assert rows["ours multi=2"] == ["250.0 ms"]
    assert rows["naive multi=2"] == ["1.00 s"]
    assert rows["naive/ours multi=2"] == ["4.0x"]
    assert rows["naive/ours by counted operations multi=2"] == [f"{26 / 16:.1f}x"]
    assert rows["MVTools multi=2"] == ["10.0 ms"]
    assert rows["ours/MVTools multi=2"] == ["25.0x"]
    assert "1 of 2 synthesised frames timed" in time_section
    memory = table_rows(rest.split("## Where the time goes")[0])
    assert memory["ours multi=2"] == ["100 MiB"] and memory["naive multi=2"] == ["300 MiB"]
    parts = table_rows(rest.split("## Where the time goes")[1].split("## CUDA kernels")[0])
    # 10 GFLOP in 0.1 s is 100 GFLOP/s, all of the better peak (the matrix product's).
    assert parts["frame features (one frame)"] == ["100.0 ms", "10.0", "100", "100%"]
    assert parts["per pair: two frames + pair"] == ["250.0 ms", "24.0", "96", "96%"]
    assert report.NO_GPU in text
    assert "| 64x48 | automatic (skipped: no room) | - | - | - | - |" in text  # the tiling table


def test_the_tiling_table_gives_times_against_untiled_and_a_marked_prediction():
    lines = tiling.report_lines(TILING)
    rows = [line for line in lines if line.startswith("| 64x48 |")]
    assert rows[0] == "| 64x48 | untiled | whole frame | 2.00 GiB | 2.0 s | 1.00 |"
    assert rows[1] == "| 64x48 | forced | 64 px | 1.00 GiB | 3.0 s | 1.50 |"
    assert rows[3] == "| 64x48 | 4.00 KiB | 8.00 KiB |"  # the per-pixel costs
    prediction = next(line for line in lines if "Prediction, not a measurement" in line)
    untiled, tiled = tiling.predict(TILING.costs, bytes_per_value=2)
    assert f"untiled about {untiled / 2**30:.1f} GiB" in prediction
    assert tiled < untiled


def test_the_chart_is_a_png_with_a_bar_per_series(results, tmp_path):
    path = tmp_path / "chart" / "latest.png"
    chart.draw(results, path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= chart.MIN_WIDTH
        colours = {colour for _, colour in image.getcolors(maxcolors=1 << 16)}
    for _, colour in chart.SERIES:  # ours, naive and MVTools each drawn
        assert Image.new("RGB", (1, 1), colour).getpixel((0, 0)) in colours


def test_the_machine_description_names_this_machine():
    described = machine.describe(torch.device("cpu"))
    assert described.device == "cpu"
    assert described.cpu_cores == machine.available_cores() >= 1
    assert described.vapoursynth_threads == vs.core.num_threads
    assert re.fullmatch(r"cpu-[a-z0-9-]+-\d+c", described.short_name)


@pytest.mark.skipif(not mvtools.available(), reason="MVTools is not installed")
def test_mvtools_flow_fps_is_timed_per_output_frame():
    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=30, fpsnum=24)
    measured = mvtools.time_flow_fps(clip, 2)
    assert measured.frames % 2 == 0 and measured.frames > 0
    assert measured.seconds_per_frame > 0
    assert mvtools.flow_fps(clip, 2).num_frames == 60
