"""``vsdain bench --bfloat16 --pair FIRST SECOND``: the frame pair bfloat16 is compared on.

Every bad pair is refused before the network is built, with ``--pair`` named; a good one is
read as two (1, 3, H, W) tensors in [0, 1]. Without --pair the comparison uses the synthetic
pattern, which lives in the package.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vsdain.benchmark.precision import (
    SYNTHETIC_PAIR_SIZE,
    PairError,
    read_pair,
    synthetic_pair,
)
from vsdain.commands import USAGE_EXIT_CODE, main

Image = pytest.importorskip("PIL.Image")


def _png(path, width, height, value=0):
    Image.fromarray(np.full((height, width, 3), value, dtype=np.uint8)).save(path)
    return path


def _bench_error(argv, capsys) -> str:
    assert main(["bench", "--device", "cpu", *argv]) == USAGE_EXIT_CODE
    return capsys.readouterr().err


def test_a_missing_file_is_named_with_the_option(tmp_path, capsys):
    first = _png(tmp_path / "0.png", 8, 6)
    missing = tmp_path / "absent.png"
    err = _bench_error(["--bfloat16", "--pair", str(first), str(missing)], capsys)
    assert f"vsdain bench: --pair {missing}: no such file" in err


def test_pair_needs_two_paths(tmp_path, capsys):
    first = _png(tmp_path / "0.png", 8, 6)
    err = _bench_error(["--bfloat16", "--pair", str(first)], capsys)
    assert "--pair" in err
    assert "expected 2 arguments" in err


def test_pair_without_bfloat16_says_what_to_add(tmp_path, capsys):
    first, second = _png(tmp_path / "0.png", 8, 6), _png(tmp_path / "1.png", 8, 6)
    err = _bench_error(["--pair", str(first), str(second)], capsys)
    assert "--pair is the frame pair of the --bfloat16 comparison: add --bfloat16" in err


def test_frames_of_two_sizes_are_refused(tmp_path, capsys):
    first, second = _png(tmp_path / "0.png", 8, 6), _png(tmp_path / "1.png", 10, 6)
    err = _bench_error(["--bfloat16", "--pair", str(first), str(second)], capsys)
    assert "--pair: the two frames differ in size: 0.png is 8x6, 1.png is 10x6" in err


def test_a_file_that_is_no_image_is_refused(tmp_path, capsys):
    first = _png(tmp_path / "0.png", 8, 6)
    text = tmp_path / "notes.png"
    text.write_text("not an image", encoding="utf-8")
    err = _bench_error(["--bfloat16", "--pair", str(first), str(text)], capsys)
    assert f"--pair: {text}: not a readable image" in err


def test_the_help_names_the_default_pair(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--pair FIRST SECOND" in out
    width, height = SYNTHETIC_PAIR_SIZE
    assert f"synthetic moving pattern, {width}x{height}" in out


def test_read_pair_gives_two_frames_in_the_unit_range(tmp_path):
    first, second = _png(tmp_path / "a.png", 5, 3, 0), _png(tmp_path / "b.png", 5, 3, 255)
    frames = read_pair(first, second)
    assert [frame.shape for frame in frames] == [(1, 3, 3, 5)] * 2
    assert all(frame.dtype == torch.float32 for frame in frames)
    assert torch.equal(frames[0], torch.zeros(1, 3, 3, 5))
    assert torch.equal(frames[1], torch.ones(1, 3, 3, 5))


def test_read_pair_refuses_frames_of_two_sizes(tmp_path):
    first, second = _png(tmp_path / "a.png", 5, 3), _png(tmp_path / "b.png", 5, 4)
    with pytest.raises(PairError, match="differ in size"):
        read_pair(first, second)


def test_the_default_pair_is_two_different_synthetic_frames():
    first, second = synthetic_pair(16, 8)
    assert first.shape == second.shape == (1, 3, 8, 16)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert not torch.equal(first, second)
