"""``python -m vsdain evaluate``: layouts, metrics against hand-computed values and an
independent implementation, and the reports it writes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vsdain.commands import main
from vsdain.evaluation import (
    DatasetError,
    average_frames,
    evaluate,
    find_triplets,
    interpolation_error,
    psnr,
    read_triplet,
    ssim,
)
from vsdain.evaluation.metrics import gaussian_window, mean_absolute_error, to_8bit
from vsdain.evaluation.report import STRIP_COLUMNS, STRIP_TILE_WIDTH


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def write_png(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path)


def random_frame(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# -- the acceptance check: frame averaging on UCF101 against an independent computation -----


@pytest.mark.slow
def test_average_psnr_on_ucf101_matches_an_independent_computation(shared_data, tmp_path):
    folder = shared_data / "ucf101"
    assert (
        main(
            [
                "evaluate",
                str(folder),
                "--layout",
                "ucf101",
                "--method",
                "average",
                "--out",
                str(tmp_path),
                "--worst",
                "0",
            ]
        )
        == 0
    )
    rows = read_csv(tmp_path / "metrics.csv")
    mean_row = rows.pop()
    assert mean_row["sample"] == "mean"

    # Independent: PIL + numpy float64, the average rounded half to even as np.round does.
    expected = {}
    for sample in folder.iterdir():
        first, truth, second = (
            np.asarray(Image.open(sample / name).convert("RGB"), dtype=np.float64)
            for name in ("frame_00.png", "frame_01_gt.png", "frame_02.png")
        )
        middle = np.round((first + second) / 2.0)
        expected[sample.name] = 10.0 * math.log10(255.0**2 / np.mean((middle - truth) ** 2))
    assert len(rows) == len(expected) == 100
    for row in rows:
        assert float(row["psnr"]) == pytest.approx(expected[row["sample"]], abs=1e-6)
    independent = float(np.mean(list(expected.values())))
    assert abs(float(mean_row["psnr"]) - independent) < 0.01
    print(
        f"UCF101 frame averaging: ours {float(mean_row['psnr']):.4f} dB, "
        f"independent {independent:.4f} dB"
    )


# -- reports ----------------------------------------------------------------------------------


def test_middlebury_layout_writes_csv_table_and_strip(shared_data, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(
        [
            "evaluate",
            str(shared_data / "davis"),
            "--layout",
            "middlebury",
            "--method",
            "average",
            "--out",
            str(out),
            "--worst",
            "3",
            "--limit",  # the first five of twelve, by name: up to inflatable, 960x507
            "5",
        ]
    )
    assert code == 0
    assert "PSNR" in capsys.readouterr().out

    rows = read_csv(out / "metrics.csv")
    assert [row["sample"] for row in rows[:-1]] == sorted(
        path.name for path in (shared_data / "davis" / "gt").iterdir()
    )[:5]
    assert rows[-1]["sample"] == "mean"
    assert float(rows[-1]["psnr"]) == pytest.approx(np.mean([float(r["psnr"]) for r in rows[:-1]]))
    sizes = {row["sample"]: (int(row["width"]), int(row["height"])) for row in rows[:-1]}
    assert sizes["inflatable"] == (960, 507)

    table = (out / "metrics.md").read_text()
    assert "| **mean** |" in table
    for name in sizes:
        assert f"| {name} |" in table

    with Image.open(out / "worst.png") as strip:
        assert strip.mode == "RGB"
        assert strip.width == STRIP_TILE_WIDTH * len(STRIP_COLUMNS)
        assert strip.height > 3 * 100


def test_strip_holds_the_lowest_psnr_samples_in_order(tmp_path):
    # Six grey triplets whose middle frame is off the average by a different amount each, in
    # an order unrelated to their names: the worst three are known by hand.
    offsets = {"s1": 3, "s2": 40, "s3": 1, "s4": 25, "s5": 9, "s6": 60}
    for name, offset in offsets.items():
        for index, level in enumerate((100, 120 + offset, 140)):
            write_png(tmp_path / name / f"{index}.png", np.full((24, 40, 3), level, np.uint8))
    evaluation = evaluate(find_triplets(tmp_path, "triplets"), average_frames, worst=3)
    assert [row.result.name for row in evaluation.worst] == ["s6", "s2", "s4"]
    by_psnr = sorted(evaluation.results, key=lambda result: result.scores.psnr)
    assert [r.name for r in by_psnr] == ["s6", "s2", "s4", "s5", "s1", "s3"]
    row = evaluation.worst[0]
    assert row.ours.shape == row.truth.shape == (24, 40, 3)
    assert (row.result.height, row.result.width) == (24, 40)


def test_dain_method_with_a_checkpoint_on_a_triplet_folder(shared_data, tmp_path, random_weights):
    # Small crops of real frames keep the CPU forward pass short; random weights, so only the
    # plumbing (padding odd sizes, 8-bit output, reports) is checked, not the quality.
    data = tmp_path / "data"
    frames = read_triplet(find_triplets(shared_data / "davis", "middlebury")[0])
    for name, frame in zip(("a", "b", "c"), frames, strict=True):
        write_png(data / "clip" / "0007" / f"{name}.png", frame[:50, :70])
    weights = random_weights
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            str(data),
            "--layout",
            "triplets",
            "--method",
            "dain",
            "--weights",
            str(weights),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--save-frames",
        ]
    )
    assert code == 0
    rows = read_csv(out / "metrics.csv")
    assert [row["sample"] for row in rows] == ["clip/0007", "mean"]
    assert (rows[0]["width"], rows[0]["height"]) == ("70", "50")
    with Image.open(out / "frames" / "clip" / "0007.png") as saved:
        assert saved.size == (70, 50)
    assert (out / "worst.png").is_file()


def test_dain_method_without_weights_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data" / "0001"
    for index in range(3):
        write_png(data / f"{index}.png", random_frame(16, 16, index))
    monkeypatch.setenv("VSDAIN_WEIGHTS_DIR", str(tmp_path / "empty"))
    code = main(
        ["evaluate", str(tmp_path / "data"), "--layout", "triplets", "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert "download" in capsys.readouterr().err


def test_missing_folder_is_a_usage_error(tmp_path, capsys):
    code = main(
        [
            "evaluate",
            str(tmp_path / "nothing"),
            "--layout",
            "ucf101",
            "--method",
            "average",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "no folder" in capsys.readouterr().err


# -- layouts ----------------------------------------------------------------------------------


def test_vimeo90k_layout_follows_the_list(tmp_path):
    for sample in ("00001/0001", "00002/0010"):
        for index in (1, 2, 3):
            write_png(tmp_path / "sequences" / sample / f"im{index}.png", random_frame(8, 8, index))
    (tmp_path / "tri_testlist.txt").write_text("00002/0010\n00001/0001\n\n")
    triplets = find_triplets(tmp_path, "vimeo90k")
    assert [triplet.name for triplet in triplets] == ["00002/0010", "00001/0001"]
    assert triplets[0].middle == tmp_path / "sequences" / "00002" / "0010" / "im2.png"
    with pytest.raises(DatasetError, match=r"tri_trainlist\.txt"):
        find_triplets(tmp_path, "vimeo90k", split="train")


def test_vimeo90k_listed_sample_missing_is_reported(tmp_path):
    (tmp_path / "sequences").mkdir()
    (tmp_path / "tri_testlist.txt").write_text("00001/0001\n")
    with pytest.raises(DatasetError, match="missing"):
        find_triplets(tmp_path, "vimeo90k")


def test_triplets_layout_sorts_numbers_as_numbers_and_skips_other_folders(tmp_path):
    for name in ("frame10.png", "frame2.png", "frame1.png"):
        write_png(tmp_path / "shot" / name, random_frame(8, 8, 0))
    write_png(tmp_path / "pair" / "a.png", random_frame(8, 8, 0))
    write_png(tmp_path / "pair" / "b.png", random_frame(8, 8, 0))
    (triplet,) = find_triplets(tmp_path, "triplets")
    assert triplet.name == "shot"
    assert [path.name for path in (triplet.first, triplet.middle, triplet.second)] == [
        "frame1.png",
        "frame2.png",
        "frame10.png",
    ]


def test_middlebury_layout_on_the_davis_triplets(shared_data):
    triplets = find_triplets(shared_data / "davis", "middlebury")
    assert len(triplets) == 12
    assert triplets[0].first.name == "frame10.png"
    assert triplets[0].middle.name == "frame10i11.png"


def test_frames_of_different_sizes_are_refused(tmp_path):
    write_png(tmp_path / "t" / "1.png", random_frame(8, 8, 0))
    write_png(tmp_path / "t" / "2.png", random_frame(8, 9, 0))
    write_png(tmp_path / "t" / "3.png", random_frame(8, 8, 0))
    (triplet,) = find_triplets(tmp_path, "triplets")
    with pytest.raises(DatasetError, match="differ in size"):
        read_triplet(triplet)


def test_sixteen_bit_images_are_refused(tmp_path):
    for index in range(3):
        Image.fromarray(np.full((8, 8), 1000, dtype=np.uint16)).save(tmp_path / f"{index}.png")
    (triplet,) = find_triplets(tmp_path, "triplets")
    with pytest.raises(DatasetError, match="8-bit"):
        read_triplet(triplet)


# -- metrics: hand-computed cases ---------------------------------------------------------------


def test_psnr_of_a_one_level_difference():
    truth = np.full((4, 5, 3), 100, dtype=np.uint8)
    assert psnr(truth + 1, truth) == pytest.approx(20 * math.log10(255.0))
    assert psnr(truth, truth) == math.inf


def test_interpolation_error_is_rms_of_the_rgb_difference_length():
    truth = np.full((6, 4, 3), 50, dtype=np.uint8)
    ours = truth + np.array([3, 4, 0], dtype=np.uint8)  # a length-5 difference everywhere
    assert interpolation_error(ours, truth) == pytest.approx(5.0)
    assert mean_absolute_error(ours, truth) == pytest.approx(7.0 / 3.0)
    half = truth.copy()
    half[:3] += np.array([3, 4, 0], dtype=np.uint8)  # half the pixels: RMS = 5 / sqrt(2)
    assert interpolation_error(half, truth) == pytest.approx(5.0 / math.sqrt(2.0))


def test_ssim_of_constant_frames_is_the_luminance_term():
    ours = np.full((16, 16, 3), 100, dtype=np.uint8)
    truth = np.full((16, 16, 3), 110, dtype=np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(ours, truth) == pytest.approx(expected, rel=1e-12)
    assert ssim(ours, truth, channels="luma") == pytest.approx(expected, rel=1e-9)
    assert ssim(truth, truth) == pytest.approx(1.0)


def reference_ssim(ours: np.ndarray, truth: np.ndarray) -> float:
    """Wang et al. written out window by window: explicit 2-D Gaussian, valid positions only."""
    taps = np.arange(11) - 5.0
    window = np.exp(-(taps[:, None] ** 2 + taps[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for channel in range(3):
        x = ours[..., channel].astype(np.float64)
        y = truth[..., channel].astype(np.float64)
        patches_x = np.lib.stride_tricks.sliding_window_view(x, (11, 11))
        patches_y = np.lib.stride_tricks.sliding_window_view(y, (11, 11))
        mean_x = np.einsum("ijkl,kl->ij", patches_x, window)
        mean_y = np.einsum("ijkl,kl->ij", patches_y, window)
        var_x = np.einsum("ijkl,kl->ij", patches_x**2, window) - mean_x**2
        var_y = np.einsum("ijkl,kl->ij", patches_y**2, window) - mean_y**2
        cov = np.einsum("ijkl,kl->ij", patches_x * patches_y, window) - mean_x * mean_y
        ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / (
            (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
        )
        values.append(ssim_map.mean())
    return float(np.mean(values))


@pytest.mark.parametrize("size", [(11, 11), (23, 17), (40, 31)])
def test_ssim_matches_a_window_by_window_reference(size):
    truth = random_frame(*size, seed=1)
    noise = np.random.default_rng(2).integers(-20, 21, truth.shape)
    ours = np.clip(truth.astype(int) + noise, 0, 255).astype(np.uint8)
    assert ssim(ours, truth) == pytest.approx(reference_ssim(ours, truth), abs=1e-10)
    assert ssim(ours, truth) == pytest.approx(ssim(truth, ours), abs=1e-12)


def test_ssim_window_is_the_normalised_gaussian():
    window = gaussian_window()
    assert window.shape == (11,)
    assert float(window.sum()) == pytest.approx(1.0)
    assert int(window.argmax()) == 5


def test_ssim_refuses_frames_smaller_than_the_window():
    frame = random_frame(10, 30, 0)
    with pytest.raises(ValueError, match="11x11"):
        ssim(frame, frame)


def test_to_8bit_clips_and_rounds_to_the_nearest_level():
    # 0.5 * 255 = 127.5 exactly: the tie goes to the even level, 128.
    frame = torch.tensor([-0.2, 1.3, 0.5, 0.25, 0.75, 100.4 / 255]).view(3, 2, 1)
    levels = to_8bit(frame)
    assert levels.shape == (2, 1, 3)
    assert levels.dtype == np.uint8
    assert levels.transpose(2, 0, 1).ravel().tolist() == [0, 255, 128, 64, 191, 100]


def test_average_frames_rounds_exactly():
    first = np.array([[[0, 1, 254]]], dtype=np.uint8)
    second = np.array([[[1, 2, 255]]], dtype=np.uint8)
    assert average_frames(first, second).tolist() == [[[0, 2, 254]]]
