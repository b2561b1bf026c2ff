"""The benchmark machinery end to end at a tiny size, and its operation counts by hand.

Timings themselves are not checked (they depend on the machine and its load); the report's
structure, the files it writes and the counted operations are.
"""

from __future__ import annotations

import re

import pytest
import torch

from vsdain.benchmark import flops
from vsdain.model import DAIN
from vsdain.model.synthesis import SYNTHESIS_FEATURES, SYNTHESIS_INPUT_CHANNELS

RESIDUAL_CONVS = 6  # three residual blocks of two 3x3 convolutions
SYNTHESIS_OUTPUT = 3


@pytest.fixture(scope="module")
def network() -> DAIN:
    """What flops.count reads of a network is its projection: one without memory will do."""
    with torch.device("meta"):
        return DAIN()


def test_synthesis_operations_match_a_hand_count(network):
    height, width = 128, 192
    counted = flops.count(network, height, width)
    pixels = height * width
    multiply_adds = pixels * (
        SYNTHESIS_INPUT_CHANNELS * SYNTHESIS_FEATURES * 7 * 7
        + RESIDUAL_CONVS * SYNTHESIS_FEATURES * SYNTHESIS_FEATURES * 3 * 3
        + SYNTHESIS_FEATURES * SYNTHESIS_OUTPUT * 3 * 3
    )
    assert counted.synthesize == 2 * multiply_adds
    # The first 7x7 convolution alone is most of it: 437 -> 128 channels at full size.
    assert counted.synthesize >= 2 * 437 * 128 * 49 * pixels
    assert counted.naive_pair == 2 * counted.frame + counted.pair
    assert counted.frame > counted.pair > 0


def test_operation_counts_scale_with_the_padded_area(network):
    small = flops.count(network, 128, 128)
    large = flops.count(network, 256, 384)
    for part in ("frame", "pair", "synthesize"):
        assert getattr(large, part) == 6 * getattr(small, part)


@pytest.mark.slow
def test_bench_command_writes_table_and_chart(tmp_path, capsys):
    from vsdain.commands import main

    code = main(
        [
            "bench",
            "--sizes", "64x48",
            "--multis", "2",
            "--frames", "2",
            "--naive-samples", "1",
            "--clip", "synthetic",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert printed == (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert len(list(tmp_path.glob("*-*.md"))) == 1
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")

    table_row = re.compile(r"^\| ([^|]+?) \| ([^|]+?) \|$", re.MULTILINE)
    time_section, memory_section = printed.split("## Peak memory")
    rows = {match[1]: match[2] for match in table_row.finditer(time_section)}
    assert re.fullmatch(r"\d+\.\dx", rows["naive/ours multi=2"])
    assert re.fullmatch(r"\d+\.\dx", rows["naive/ours by counted operations multi=2"])
    for label in ("ours multi=2", "naive multi=2", "MVTools multi=2"):
        assert re.fullmatch(r"[\d.,]+ (s|ms|µs)", rows[label]), label
    memory_rows = {match[1]: match[2] for match in table_row.finditer(memory_section)}
    assert re.fullmatch(r"[\d.]+ (MiB|GiB)", memory_rows["ours multi=2"])
    assert "synthetic moving pattern, 64x48" in printed
    weights = re.search(r"^- Weights: (.*)$", printed, re.MULTILINE)
    assert weights is not None
    if weights[1].startswith("random"):
        assert "valid as timings" in printed
    assert "no GPU: kernel comparison skipped" in printed or "| op | reference |" in printed
    assert "| per extra timestamp: synthesis |" in printed
