"""vsdain render's filter options: every one reaches vsdain.Interpolate, is checked by the
filter's own checks before anything starts, and keys the chunk folder; the driver learns
length and rate without loading the weights, and in-process chunks share one network.

No network runs here: ``vsdain.Interpolate`` is replaced by a recorder that returns a blank
clip of the right length, and ``load_model`` by a counter, so each test takes a second or
two. tests/test_render_network.py renders through the real network.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from render_helpers import blank_output, write_script, write_video, yuv420p

import vsdain
from vsdain import weights as weights_module
from vsdain.commands import main
from vsdain.commands.render import _as_option, add_arguments
from vsdain.render import render
from vsdain.render.options import check_filter_options, filter_options, keyword_names

SOURCE_RATE = 25
SOURCE_FRAMES = 6


@pytest.fixture
def source(tmp_path) -> Path:
    """6 frames of noise at 25 fps, 64x48, lossless: a CFR file with no _Matrix."""
    generator = np.random.default_rng(5)
    pictures = [yuv420p(generator.integers(16, 236, (48, 64))) for _ in range(SOURCE_FRAMES)]
    return write_video(tmp_path / "noise.mkv", pictures, rate=Fraction(SOURCE_RATE))


@pytest.fixture
def weights_file(tmp_path) -> Path:
    """A file where the weights would be: the driver checks that it exists, the recorder
    below never reads it."""
    path = tmp_path / "best.pth"
    path.write_bytes(b"not read")
    return path


class Recorder:
    """Stands in for vsdain.Interpolate (keywords recorded, a blank clip of the output's
    length returned) and for vsdain.weights.load_model (calls counted)."""

    def __init__(self, monkeypatch, weights: Path) -> None:
        self.weights = str(weights)  # Interpolate's checks need an existing file
        self.calls: list[dict[str, object]] = []
        self.loads: list[tuple[str, str, object]] = []
        self.network = object()
        monkeypatch.setattr(vsdain, "Interpolate", self.interpolate)
        monkeypatch.setattr(weights_module, "load_model", self.load_model)

    def interpolate(self, clip: vs.VideoNode, **keywords: object) -> vs.VideoNode:
        self.calls.append(keywords)
        settings = check_filter_options(
            clip, {**without(keywords, "model"), "weights": self.weights}
        )
        return blank_output(clip, settings)

    def load_model(self, path, *, device, dtype):
        self.loads.append((str(path), str(device), dtype))
        return self.network


@pytest.fixture
def recorder(monkeypatch, weights_file) -> Recorder:
    return Recorder(monkeypatch, weights_file)


def without(mapping: dict[str, object], *names: str) -> dict[str, object]:
    return {key: value for key, value in mapping.items() if key not in names}


def run_command(*words: object) -> int:
    return main(["render", *map(str, words)])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            [
                "--fps", "50", "--dedup", "--dedup-threshold", "0.02", "--dedup-max-run", "2",
                "--sc-threshold", "5", "--precision", "float32", "--tile", "64",
                "--max-memory", "1024", "--matrix", "709", "--device", "cpu",
            ],
            {
                "fps_num": 50, "fps_den": 1, "dedup": True, "dedup_threshold": 0.02,
                "dedup_max_run": 2, "sc_threshold": 5.0, "tile": 64, "max_memory": 1024,
                "matrix": "709",
            },
        ),
        (
            ["--no-sc", "--multi", "3", "--device", "cpu"],
            {"multi": 3, "sc": False, "matrix": "170m"},  # 170m: unlabelled and under 600 lines
        ),
    ],
    ids=["dedup-and-memory", "no-sc-multi"],
)  # fmt: skip
def test_every_option_reaches_the_filter(recorder, source, weights_file, tmp_path, flags, expected):
    output = tmp_path / "out.mkv"
    code = run_command(
        source, output, "--weights", weights_file, "--codec", "ffv1", "--chunk-frames", "4",
        *flags,
    )  # fmt: skip
    assert code == 0 and output.exists()
    assert len(recorder.calls) >= 2  # one per chunk, each in its own graph
    for keywords in recorder.calls:
        assert keywords.pop("model") is recorder.network
        assert keywords == expected
    # weights, device and precision went to the one load, not to Interpolate.
    assert recorder.loads == [(str(weights_file.resolve()), "cpu", torch.float32)]


def test_the_driver_loads_no_weights_and_in_process_chunks_share_one_load(
    recorder, source, weights_file, tmp_path
):
    options = {"weights": weights_file, "device": "cpu", "codec": "ffv1", "progress": False}
    work = tmp_path / "work"
    summary = render(
        source, tmp_path / "a.mkv", chunk_frames=3, work_dir=work, keep_chunks=True, **options
    )
    assert (summary.chunks, summary.rendered) == (4, 4)
    assert len(recorder.calls) == 4 and len(recorder.loads) == 1
    # Everything done already: only the driver runs, and it loads nothing.
    again = render(source, tmp_path / "b.mkv", chunk_frames=3, work_dir=work, **options)
    assert again.rendered == 0
    assert len(recorder.calls) == 4 and len(recorder.loads) == 1


# A value other than the default for each option of the table (and fps_num/fps_den).
CHANGED = {
    "multi": 3,
    "weights": None,  # a different file, made in the test
    "device": "cpu",
    "precision": "float32",
    "matrix": "709",
    "sc": False,
    "sc_threshold": 4.0,
    "dedup": True,
    "dedup_threshold": 0.02,
    "dedup_max_run": 2,
    "tile": 64,
    "max_memory": 2048,
    "fps_num": 30,
}
NEEDS = {  # what a changed option needs beside it to be valid
    "dedup_threshold": {"dedup": True},
    "dedup_max_run": {"dedup": True},
}


# The options in two groups, each with its own test (a render per option, and one more).
OPTION_GROUPS = [
    ["multi", "weights", "device", "precision", "matrix", "sc", "sc_threshold"],
    ["dedup", "dedup_threshold", "dedup_max_run", "tile", "max_memory", "fps_num"],
]


def test_the_option_groups_cover_every_option():
    assert sorted(name for group in OPTION_GROUPS for name in group) == sorted(CHANGED)
    assert set(CHANGED) | {"fps_den"} == keyword_names()


@pytest.mark.parametrize("group", OPTION_GROUPS, ids=["first", "second"])
def test_every_option_keys_the_chunk_folder(recorder, source, weights_file, tmp_path, group):
    work = tmp_path / "work"
    common = {"codec": "ffv1", "chunk_frames": 1000, "work_dir": work, "keep_chunks": True}
    common["progress"] = False

    def job(**options: object) -> str:
        options.setdefault("weights", weights_file)
        before = set(work.glob("job-*")) if work.exists() else set()
        render(source, tmp_path / "out.mkv", **common, **options)
        created = set(work.glob("job-*")) - before
        return created.pop().name if created else ""

    base = job()
    keys = {base}
    if group is OPTION_GROUPS[0]:
        assert job() == ""  # the same options: the same folder, nothing new
        # Interpolate's defaults given explicitly key the same job as leaving them out.
        assert job(multi=2, sc=True, dedup=False, tile=None) == ""
    else:
        assert job(fps_num=30, fps_den=2) not in keys
    other_weights = tmp_path / "other" / "best.pth"
    other_weights.parent.mkdir()
    other_weights.write_bytes(b"other")
    changed = {**CHANGED, "weights": other_weights}
    for name in group:
        key = job(**{**NEEDS.get(name, {}), name: changed[name]})
        assert key and key not in keys, f"{name}={changed[name]!r} reused a job folder"
        keys.add(key)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--dedup-threshold", "0.02"],
            "--dedup-threshold has no effect without --dedup; add --dedup or drop "
            "--dedup-threshold",
        ),
        (["--sc-threshold", "0.5"], "--sc-threshold must be a number above 1, got 0.5"),
        (["--no-sc", "--sc-threshold", "4"], "--sc-threshold has no effect with --no-sc"),
        (["--precision", "float64"], "--precision must be None, 'float32'"),
        (["--tile", "5"], "--tile must be None (automatic), 0 (never tile) or an integer"),
        (["--max-memory", "8"], "--max-memory must be None"),
        (["--matrix", "601"], "--matrix must be one of"),
        (["--device", "tpu"], "--device must be 'cpu', 'cuda' or 'cuda:<index>'"),
        (["--multi", "1"], "--multi must be an integer >= 2"),
        (["--multi", "3", "--fps", "60"], "give either multi (3) or --fps, not both"),
        (["--dedup-max-run", "x"], "--dedup-max-run: invalid int value: 'x'"),
    ],
)
def test_bad_filter_option_exits_2_before_anything_starts(
    recorder, source, weights_file, tmp_path, capsys, flags, message
):
    code = run_command(source, tmp_path / "out.mkv", "--weights", weights_file, *flags)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("vsdain render: ") and message in err, err
    assert recorder.calls == [] and recorder.loads == []
    assert not list(tmp_path.glob(".out*"))  # no work folder


def test_the_checks_are_the_filters_own(source, weights_file):
    """check_filter_options raises exactly what Interpolate would, for every kind of
    mistake, because it is the same function with the same defaults."""
    clip = vs.core.bs.VideoSource(str(source))
    for bad in (
        {"dedup_max_run": 0, "dedup": True},
        {"sc": False, "sc_threshold": 4.0},
        {"precision": "half"},
        {"fps_den": 2},
        {"tile": 3},
    ):
        keywords = {"weights": str(weights_file), "device": "cpu", "matrix": "709", **bad}
        with pytest.raises(vs.Error) as from_filter:
            vsdain.Interpolate(clip, **keywords)
        with pytest.raises(vs.Error) as from_render:
            check_filter_options(clip, keywords)
        assert str(from_render.value) == str(from_filter.value)


def test_the_table_builds_every_flag_and_keyword():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    table = filter_options()
    assert {option.flag for option in table} <= flags
    assert {"--dedup", "--dedup-threshold", "--dedup-max-run", "--sc-threshold", "--no-sc"} <= {
        option.flag for option in table
    }
    assert {"--precision", "--tile", "--max-memory", "--matrix"} <= flags
    # Not given: absent (Interpolate's default applies), not a second copy of the default.
    args = parser.parse_args(["in.mkv", "out.mkv"])
    assert not any(hasattr(args, option.name) for option in table)


def test_unknown_keyword_and_options_for_a_script_are_refused(tmp_path):
    script = write_script(tmp_path / "paint.vpy", length=4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dedupe'"):
        render(script, tmp_path / "out.mkv", dedupe=True)
    from vsdain.render import RenderError

    with pytest.raises(RenderError, match="apply to a video file"):
        render(script, tmp_path / "out.mkv", dedup=True)


def test_messages_name_the_commands_options():
    assert _as_option("Interpolate: tile must be None (automatic), 0 (never tile)") == (
        "--tile must be None (automatic), 0 (never tile)"
    )
    assert _as_option("Interpolate: max_memory must be ..., e.g. max_memory=4096 for 4 GiB") == (
        "--max-memory must be ..., e.g. --max-memory 4096 for 4 GiB"
    )
    assert _as_option("Interpolate: use precision='bfloat16' or pick device='cuda'") == (
        "use --precision bfloat16 or pick --device cuda"
    )
    # The render's own messages may name files: only the leading keyword changes there.
    assert _as_option("SOURCE /clips/max_memory=1/tile_x.mkv cannot be read") == (
        "SOURCE /clips/max_memory=1/tile_x.mkv cannot be read"
    )
    assert _as_option("SOURCE x needs an output rate, fps_num/fps_den: e.g. 25") == (
        "SOURCE x needs an output rate, --fps: e.g. 25"
    )
    assert _as_option("workers must be an integer >= 1, got 0") == (
        "--workers must be an integer >= 1, got 0"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="about a driver that has no GPU")
def test_a_driver_without_a_gpu_leaves_device_and_precision_to_cluster_workers(
    source, weights_file
):
    from vsdain.render.job import _driver_settings

    clip = vs.core.bs.VideoSource(str(source))
    keywords = {"weights": str(weights_file), "device": "cuda", "precision": "float16"}
    keywords["matrix"] = "709"
    with pytest.raises(vs.Error, match="asks for CUDA, but PyTorch sees no CUDA GPU"):
        _driver_settings(clip, keywords, cluster=False)  # the workers are this machine
    settings = _driver_settings(clip, keywords, cluster=True)
    assert settings.device.type == "cpu"
    with pytest.raises(vs.Error, match="tile must be"):  # the rest is still checked here
        _driver_settings(clip, {**keywords, "tile": 3}, cluster=True)
