"""Interpolate's argument errors: each names the argument and the fix, and comes before any
weights are loaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs
from filter_clips import moving_clip, random_network

import vsdain
from vsdain import weights as weights_module
from vsdain.cli_hint import command_hint

core = vs.core


@pytest.fixture(scope="module")
def network():
    return random_network()


@pytest.fixture(scope="module")
def clip():
    return moving_clip(3)


@pytest.fixture
def no_loading(monkeypatch):
    """Fails the test if Interpolate tries to load weights."""

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the arguments were checked")

    monkeypatch.setattr(weights_module, "load_model", refuse)


def expect_error(match: str, *args, **kwargs) -> str:
    with pytest.raises(vs.Error, match=match) as raised:
        vsdain.Interpolate(*args, **kwargs)
    message = str(raised.value)
    assert message.startswith("Interpolate: ")
    return message


def blank(format=vs.RGBS, **kwargs) -> vs.VideoNode:
    return core.std.BlankClip(format=format, width=64, height=48, length=4, **kwargs)


# -- clip, matrix -----------------------------------------------------------------------------
@pytest.mark.parametrize("matrix", [None, 2])
def test_yuv_clip_without_a_matrix_asks_for_one(network, matrix):
    clip = (
        blank(vs.YUV420P8)
        if matrix is None
        else blank(vs.YUV420P8).std.SetFrameProps(_Matrix=matrix)
    )
    message = expect_error("does not say its YUV matrix", clip, model=network)
    assert "YUV420P8" in message
    assert "matrix='709'" in message
    for name in ("'170m'", "'470bg'", "'2020ncl'"):
        assert name in message


@pytest.mark.parametrize(
    ("format", "stated", "arguments"),
    [(vs.YUV420P8, None, {"matrix": "709"}), (vs.YUV422P10, "170m", {})],
    ids=["argument", "property"],
)
def test_yuv_clip_with_a_matrix_argument_or_property_is_accepted(
    network, blended, format, stated, arguments
):
    # Moving frames converted with the matrix; without a stated one, no _Matrix at all. The
    # network's frame is a blend of the two sources (conftest's ``blended``): the conversions
    # around it, with that matrix, are the subject.
    converted = moving_clip(2).resize.Bicubic(format=format, matrix_s=stated or "709")
    clip = converted if stated else converted.std.RemoveFrameProps("_Matrix")
    output = vsdain.Interpolate(clip, sc=False, model=network, tile=0, **arguments)
    assert (output.num_frames, output.format.id) == (4, format)
    sources = [clip.get_frame(k) for k in range(2)]
    first, synthesised = output.get_frame(0), output.get_frame(1)
    for plane in range(3):
        assert np.array_equal(np.asarray(first[plane]), np.asarray(sources[0][plane]))
    # The synthesised frame, converted back with that matrix, keeps the source frame's
    # properties: no _Matrix where the clip had none.
    assert synthesised.format.id == format
    assert synthesised.props.get("_Matrix") == (6 if stated else None)
    for source in sources:
        assert any(
            not np.array_equal(np.asarray(synthesised[p]), np.asarray(source[p])) for p in range(3)
        )


@pytest.mark.parametrize("matrix", ["bt709", 709, "rgb", "unspec", ""])
def test_bad_matrix_lists_the_names(network, matrix):
    message = expect_error(
        "matrix must be one of", blank(vs.YUV420P8), model=network, matrix=matrix
    )
    assert "'709'" in message and "'2020ncl'" in message


def test_matrix_on_an_rgb_clip(network):
    expect_error("matrix applies to YUV clips only", blank(vs.RGB24), model=network, matrix="709")


@pytest.mark.parametrize("format", [vs.GRAY8, vs.GRAY16, vs.GRAYS])
def test_grey_clips_name_a_conversion(network, format):
    message = expect_error("clip must be RGB or YUV", blank(format), model=network)
    assert "GRAY" in message
    assert "std.ShufflePlanes" in message


def test_variable_format_and_size(network):
    expect_error("constant format", core.std.BlankClip(varformat=True, length=4), model=network)
    expect_error("constant frame size", blank(varsize=True), model=network)


def test_too_short(network):
    expect_error("at least 2 frames, got 1", blank()[0], model=network)


def test_not_a_clip(network):
    expect_error("clip must be a vs.VideoNode", "clip.mkv", model=network)


def test_variable_frame_rate_points_at_assume_fps(network):
    spliced = blank(fpsnum=24) + blank(fpsnum=25)
    expect_error(r"variable frame rate.*std\.AssumeFPS", spliced, model=network)


# -- rate -------------------------------------------------------------------------------------
@pytest.mark.parametrize("multi", [1, 0, -2, 2.5, True, "2"])
def test_bad_multi(network, clip, multi):
    expect_error("multi must be an integer >= 2", clip, multi, model=network)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fps_num": 0}, "fps_num must be a positive integer"),
        ({"fps_num": 59.94}, "fps_num must be a positive integer"),
        ({"fps_num": 60000, "fps_den": 0}, "fps_den must be a positive integer"),
        ({"fps_den": 1001}, "fps_den was given without fps_num"),
        ({"multi": 3, "fps_num": 60}, "either multi"),
        ({"fps_num": 1_000_003}, "simpler rate"),
    ],
)
def test_bad_rate(network, clip, kwargs, match):
    expect_error(match, clip, model=network, **kwargs)


# -- scene change -----------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [0, -1.0, float("nan"), float("inf"), "3", True])
def test_bad_sc_threshold(network, clip, threshold):
    expect_error(
        "sc_threshold must be a number above 1", clip, sc_threshold=threshold, model=network
    )


@pytest.mark.parametrize("threshold", [0.1, 0.5, 1, 1.0])
def test_a_vs_rife_sc_threshold_is_refused_with_the_scale_explained(network, clip, threshold):
    # vs-rife's sc_threshold is a luma-difference fraction in 0..1; here it is a ratio to the
    # neighbouring pairs, and 0.1 would make ordinary motion a cut everywhere.
    message = expect_error(
        "sc_threshold must be a number above 1", clip, sc_threshold=threshold, model=network
    )
    assert "ratio" in message and "vs-rife" in message and "default 3.0" in message


def test_a_ratio_just_above_1_is_accepted(network, clip):
    assert vsdain.Interpolate(clip, sc_threshold=1.5, model=network).num_frames == 6


def test_sc_threshold_without_detection(network, clip):
    expect_error("no effect with sc=False", clip, sc=False, sc_threshold=3.0, model=network)


def test_sc_must_be_a_bool(network, clip):
    expect_error("sc must be True or False", clip, sc="yes", model=network)


# -- weights, device, precision -----------------------------------------------------------------
def test_missing_weights_name_the_download_command(clip, tmp_path, no_loading):
    message = expect_error("not found", clip, weights=str(tmp_path / "nothing.pth"))
    assert command_hint("download") in message


def test_missing_default_weights_name_the_download_command(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("VSDAIN_WEIGHTS_DIR", str(tmp_path))
    message = expect_error("not found", clip, device="cpu")
    assert command_hint("download") in message
    assert str(tmp_path) in message


def test_unreadable_weights_become_a_vs_error(clip, tmp_path):
    broken = tmp_path / "best.pth"
    broken.write_bytes(b"not a checkpoint")
    expect_error("cannot read", clip, weights=str(broken), device="cpu")


def test_weights_must_be_a_path(clip, no_loading):
    expect_error("weights must be a path", clip, weights=42)


def test_every_argument_is_checked_before_loading(clip, tmp_path, no_loading):
    present = tmp_path / "best.pth"
    present.write_bytes(b"never read")
    expect_error("precision must be", clip, weights=str(present), device="cpu", precision="yes")
    expect_error("multi must be", clip, 1, weights=str(present))


@pytest.mark.parametrize("device", ["tpu", "gpu0", 3])
def test_bad_device(clip, device, no_loading):
    expect_error("device must be", clip, device=device)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_without_a_gpu(clip, no_loading):
    expect_error("no CUDA GPU.*device='cpu'", clip, device="cuda:1")


def test_float16_needs_cuda(clip, no_loading):
    message = expect_error(
        "precision='float16' needs a CUDA device", clip, device="cpu", precision="float16"
    )
    assert "precision='bfloat16'" in message


@pytest.mark.parametrize("precision", ["fp32", "half", "bf16", torch.float32, 16, True])
def test_bad_precision_lists_the_values(clip, no_loading, precision):
    message = expect_error("precision must be None", clip, device="cpu", precision=precision)
    assert "'float32', 'float16' or 'bfloat16'" in message


@pytest.mark.parametrize("fp16", [True, False])
def test_fp16_is_gone_and_points_to_precision(clip, no_loading, fp16):
    message = expect_error("fp16 is gone", clip, device="cpu", fp16=fp16)
    assert "precision='float16'" in message


# -- model= -------------------------------------------------------------------------------------
def test_model_must_be_a_dain(clip):
    expect_error("model must be a vsdain.DAIN", clip, model=torch.nn.Linear(1, 1))


def test_model_excludes_weights_device_and_precision(network, clip, tmp_path):
    expect_error("weights or model, not both", clip, model=network, weights=str(tmp_path))
    expect_error("move the model yourself", clip, model=network, device="cpu")
    expect_error("move the model yourself", clip, model=network, precision="float32")


def test_model_in_training_mode(clip):
    expect_error(r"model\.eval\(\)", clip, model=vsdain.DAIN().train())
