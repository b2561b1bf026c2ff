"""vsdain.Interpolate on small synthetic clips: timing, exact source frames, properties,
scene cuts, caching and thread safety. Random weights: structure and exactness only.

Every filter here is built with tile=0: the automatic choice would first measure a probe
window, as much work again as a timestamp, in each new filter. Tiling has its own tests
(test_tiling.py)."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
import torch
import vapoursynth as vs
from filter_clips import SOURCE_PROP, clip_from_arrays, moving_clip, pattern, planes, random_network

import vsdain
from vsdain.filter.pair_cache import PairCache

core = vs.core
NTSC_FILM = Fraction(24000, 1001)


@pytest.fixture(scope="module")
def network():
    """The shared test network, with its three stages counted per call."""
    model = random_network()
    model.calls = Counter()
    for stage in ("frame_features", "pair_features", "synthesize"):
        original = getattr(model, stage)

        def counted(*args, _original=original, _stage=stage, **kwargs):
            model.calls[_stage] += 1
            return _original(*args, **kwargs)

        setattr(model, stage, counted)
    return model


# The moving pattern rounded to float16 values, so that an RGBH clip holds the same frames.
SOURCE_ARRAYS = [pattern(n).astype(np.float16).astype(np.float32) for n in range(3)]


@pytest.fixture(scope="module")
def source():
    """Three frames: two pairs sharing frame 1, so 6 output frames at multi=2: the sources at
    0, 2 and 4, synthesised frames at 1 and 3, the tail slot at 5."""
    return clip_from_arrays(SOURCE_ARRAYS)


@pytest.fixture(scope="module")
def sequential(network, source):
    """Every frame of a multi=2 interpolation, asked for in order, and the network calls."""
    network.calls.clear()
    output = vsdain.Interpolate(source, 2, model=network, tile=0)
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    return frames, Counter(network.calls)


def duration(frame: vs.VideoFrame) -> Fraction:
    return Fraction(frame.props["_DurationNum"], frame.props["_DurationDen"])


# -- timing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("multi", [2, 3, 4])
def test_multi_sets_length_and_exact_fps(network, source, multi):
    output = vsdain.Interpolate(source, multi, model=network, tile=0)
    assert output.num_frames == source.num_frames * multi
    assert output.fps == NTSC_FILM * multi
    assert output.format.id == vs.RGBS
    assert (output.width, output.height) == (source.width, source.height)


def test_film_to_ntsc_60(network):
    clip = moving_clip(5)
    output = vsdain.Interpolate(clip, fps_num=60000, fps_den=1001, model=network, tile=0)
    assert output.fps == Fraction(60000, 1001)
    assert output.num_frames == 13  # ceil(5 * 5 / 2)
    # Output 5 sits on source frame 2, output 12 past the last frame (4 + 4/5).
    assert np.array_equal(planes(output.get_frame(5)), planes(clip.get_frame(2)))
    assert np.array_equal(planes(output.get_frame(12)), planes(clip.get_frame(4)))


def test_rate_below_the_source_keeps_every_other_frame(network):
    clip = moving_clip(6)
    output = vsdain.Interpolate(clip, fps_num=12000, fps_den=1001, model=network, tile=0)
    assert output.num_frames == 3
    assert [output.get_frame(n).props[SOURCE_PROP] for n in range(3)] == [0, 2, 4]


# -- frames and properties --------------------------------------------------------------------
def test_source_frames_are_bit_exact_with_their_properties(sequential, source):
    frames, _ = sequential
    for k in range(source.num_frames):
        original = source.get_frame(k)
        out = frames[2 * k]
        assert np.array_equal(planes(out), planes(original))
        expected = dict(original.props)
        expected.update(_DurationNum=1001, _DurationDen=48000)
        assert dict(out.props) == expected


def test_every_frame_carries_the_output_duration(sequential):
    frames, _ = sequential
    assert {duration(frame) for frame in frames} == {Fraction(1001, 48000)}


def test_synthesised_frames_copy_the_left_frames_properties_without_absolute_time(
    sequential, source
):
    frames, _ = sequential
    for n in (1, 3):
        props = dict(frames[n].props)
        assert props[SOURCE_PROP] == n // 2
        assert "_AbsoluteTime" not in props
        image = planes(frames[n])
        assert image.dtype == np.float32
        assert image.min() >= 0.0 and image.max() <= 1.0
        for neighbour in (n // 2, n // 2 + 1):
            assert not np.array_equal(image, planes(source.get_frame(neighbour)))
    assert not np.array_equal(planes(frames[1]), planes(frames[3]))


def test_slots_after_the_last_frame_repeat_it(sequential, source):
    frames, _ = sequential
    last = source.get_frame(2)
    for n in (5,):
        assert np.array_equal(planes(frames[n]), planes(last))
        assert frames[n].props[SOURCE_PROP] == 2
        assert "_AbsoluteTime" not in frames[n].props


def test_each_frame_and_pair_is_computed_once(sequential):
    _, calls = sequential
    # 3 source frames (frame 1 in both pairs), 2 pairs, one timestamp each; the tail needs no
    # network. (A pair's timestamps sharing its features: the tests of threads and of large
    # multi below.)
    assert calls == Counter(frame_features=3, pair_features=2, synthesize=2)


# -- order and threads ----------------------------------------------------------------------
def test_out_of_order_requests_give_the_sequential_frames(sequential, network, source):
    frames, _ = sequential
    output = vsdain.Interpolate(source, 2, model=network, tile=0)
    order = [3, 1, 5, 0, 4, 2]
    for n in order:
        assert np.array_equal(planes(output.get_frame(n)), planes(frames[n])), n


@pytest.fixture
def six_threads():
    threads = core.num_threads
    core.num_threads = 6
    yield
    core.num_threads = threads


def test_many_threads_give_the_sequential_frames(sequential, network, source, six_threads):
    frames, _ = sequential
    output = vsdain.Interpolate(source, 2, model=network, tile=0)
    order = list(range(output.num_frames)) * 2
    random.Random(3).shuffle(order)
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda n: (n, planes(output.get_frame(n))), order))
    for n, image in results:
        assert np.array_equal(image, planes(frames[n])), n


def test_streamed_requests_give_the_sequential_frames(sequential, network, source, six_threads):
    # The way vspipe asks: asynchronous requests ahead of the one being written.
    frames, _ = sequential
    output = vsdain.Interpolate(source, 2, model=network, tile=0)
    streamed = [planes(frame) for frame in output.frames()]
    assert len(streamed) == len(frames)
    for n, image in enumerate(streamed):
        assert np.array_equal(image, planes(frames[n])), n


def test_threads_asking_for_one_pair_at_once_compute_it_once(network):
    output = vsdain.Interpolate(moving_clip(2), 4, model=network, tile=0)
    network.calls.clear()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(output.get_frame, [3, 1, 2]))
    assert network.calls == Counter(frame_features=2, pair_features=1, synthesize=3)


def test_a_large_multi_synthesises_one_timestamp_before_the_first_frame(network):
    clip = moving_clip(2)
    output = vsdain.Interpolate(clip, 50, model=network, tile=0)
    network.calls.clear()
    output.get_frame(1)
    assert network.calls == Counter(frame_features=2, pair_features=1, synthesize=1)
    last = planes(output.get_frame(49))
    # The pair's features were reused: only the new timestamp ran, and it is exact.
    assert network.calls == Counter(frame_features=2, pair_features=1, synthesize=2)
    images = [torch.from_numpy(pattern(n)).unsqueeze(0) for n in range(2)]
    (expected,) = network.interpolate(*images, [49 / 50])
    assert np.array_equal(last, expected[0].numpy())


def test_rgbh_on_the_cpu_is_computed_in_float32_and_written_as_half(sequential, network):
    frames, _ = sequential  # the same frames as RGBS
    clip = clip_from_arrays(SOURCE_ARRAYS, format=vs.RGBH)
    half = vsdain.Interpolate(clip, 2, model=network, tile=0)
    assert half.format.id == vs.RGBH
    expected = planes(frames[1]).astype(np.float16)
    assert np.array_equal(planes(half.get_frame(1)), expected)


# -- scene cuts -------------------------------------------------------------------------------
def with_props(clip: vs.VideoNode, frame: int, **props) -> vs.VideoNode:
    marked = clip[frame].std.SetFrameProps(**props)
    return (clip[:frame] + marked if frame else marked) + clip[frame + 1 :]


@pytest.mark.parametrize(("frame", "prop"), [(1, "_SceneChangeNext"), (2, "_SceneChangePrev")])
def test_a_cut_marked_by_another_detector_repeats_the_left_frame(network, frame, prop):
    clip = with_props(moving_clip(4), frame, **{prop: 1})
    output = vsdain.Interpolate(clip, 3, model=network, tile=0)
    left = clip.get_frame(1)
    for n, last in ((4, False), (5, True)):
        out = output.get_frame(n)
        assert np.array_equal(planes(out), planes(left))
        assert "_AbsoluteTime" not in out.props
        assert out.props.get("_SceneChangeNext", 0) == int(last)
        assert "_SceneChangePrev" not in out.props
        assert duration(out) == Fraction(1001, 72000)


def test_sc_false_interpolates_across_marked_cuts(network):
    clip = with_props(moving_clip(3), 1, _SceneChangeNext=1)
    output = vsdain.Interpolate(clip, model=network, tile=0, sc=False)
    assert not np.array_equal(planes(output.get_frame(3)), planes(clip.get_frame(1)))


def test_the_built_in_detector_stops_interpolation_at_a_splice(network):
    shot_b = [1.0 - pattern(n)[::-1] for n in range(3)]
    clip = clip_from_arrays([pattern(n) for n in range(3)] + shot_b)
    output = vsdain.Interpolate(clip, model=network, tile=0)
    assert np.array_equal(planes(output.get_frame(5)), planes(clip.get_frame(2)))
    assert output.get_frame(5).props["_SceneChangeNext"] == 1
    with_high_threshold = vsdain.Interpolate(clip, model=network, tile=0, sc_threshold=1e6)
    assert not np.array_equal(planes(with_high_threshold.get_frame(5)), planes(clip.get_frame(2)))


def repeat_marker(monkeypatch, clip: vs.VideoNode) -> None:
    """Every synthesised frame becomes -1 everywhere, so tests see the cut decisions without
    running the network."""

    def marker(self, first, second, t, first_frame, second_frame):
        return np.full((3, clip.height, clip.width), -1.0, np.float32)

    monkeypatch.setattr(PairCache, "interpolated", marker)


def flagged(output: vs.VideoNode, prop: str) -> list[int]:
    return [n for n, frame in enumerate(output.frames()) if frame.props.get(prop) == 1]


@pytest.mark.parametrize(("frame", "prop"), [(1, "_SceneChangeNext"), (2, "_SceneChangePrev")])
def test_a_marked_cut_is_flagged_once_on_the_last_frame_before_it(
    monkeypatch, network, frame, prop
):
    clip = with_props(moving_clip(4), frame, **{prop: 1})
    repeat_marker(monkeypatch, clip)
    output = vsdain.Interpolate(clip, 3, model=network, tile=0)
    # Output 3 is source frame 1 itself: the cut comes after the two repeated slots 4 and 5.
    assert flagged(output, "_SceneChangeNext") == [5]
    assert flagged(output, "_SceneChangePrev") == [6]
    for n in (3, 6):
        assert np.array_equal(planes(output.get_frame(n)), planes(clip.get_frame(n // 3)))


@pytest.mark.parametrize(("marked", "last_before"), [(1, 0), (3, 1)])
def test_lowering_the_rate_keeps_a_cut_between_the_frames_it_keeps(network, marked, last_before):
    # Half rate keeps source frames 0, 2, 4: the cut after source frame 1 sits between outputs
    # 0 and 1, the one after frame 3 (a frame that is dropped) between outputs 1 and 2.
    clip = with_props(moving_clip(6), marked, _SceneChangeNext=1)
    output = vsdain.Interpolate(clip, fps_num=12000, fps_den=1001, model=network, tile=0)
    assert flagged(output, "_SceneChangeNext") == [last_before]
    assert flagged(output, "_SceneChangePrev") == [last_before + 1]


def test_a_detected_cut_is_flagged_once_below_the_source_rate(network):
    shot_b = [1.0 - pattern(n)[::-1] for n in range(3)]
    clip = clip_from_arrays([pattern(n) for n in range(3)] + shot_b)  # cut between 2 and 3
    output = vsdain.Interpolate(clip, fps_num=8000, fps_den=1001, model=network, tile=0)
    # A third of the rate keeps source frames 0 and 3.
    assert [output.get_frame(n).props[SOURCE_PROP] for n in range(2)] == [0, 3]
    assert flagged(output, "_SceneChangeNext") == [0]
    assert flagged(output, "_SceneChangePrev") == [1]


@pytest.mark.parametrize("value", ["0", "1", [0, 0], [1, 1], -1, 2, 1.0])
def test_scene_change_values_other_than_the_integer_1_are_no_cut(monkeypatch, network, value):
    clip = with_props(moving_clip(3), 1, _SceneChangeNext=value, _SceneChangePrev=value)
    repeat_marker(monkeypatch, clip)
    output = vsdain.Interpolate(clip, model=network, tile=0)
    for n in (1, 3):
        assert (planes(output.get_frame(n)) == -1).all(), n
    # The source frame passes through without the meaningless flags.
    source_frame = output.get_frame(2)
    assert np.array_equal(planes(source_frame), planes(clip.get_frame(1)))
    assert "_SceneChangeNext" not in source_frame.props
    assert "_SceneChangePrev" not in source_frame.props


def test_sc_false_drops_the_sources_scene_change_flags(network):
    clip = with_props(moving_clip(3), 1, _SceneChangeNext=1)
    output = vsdain.Interpolate(clip[:2], model=network, tile=0, sc=False)
    assert "_SceneChangeNext" not in output.get_frame(2).props


# -- errors while rendering ---------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["synthesize", "pair_features", "frame_features"])
def test_a_failure_while_rendering_names_the_frame_and_pair(monkeypatch, network, stage):
    def fail(*args, **kwargs):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(network, stage, fail)
    output = vsdain.Interpolate(moving_clip(3), 4, model=network, tile=0)
    with pytest.raises(vs.Error) as raised:
        output.get_frame(6)
    message = str(raised.value)
    expected = (
        "Interpolate: frame 6 (source pair 1-2, t=1/2): RuntimeError: simulated out of memory"
    )
    # VapourSynth writes the whole chain: the original traceback, then ours.
    assert message.rstrip().endswith(expected)
    cause = message.index("The above exception was the direct cause of the following exception")
    assert message.index("RuntimeError: simulated out of memory") < cause
    assert "in fail" in message[:cause]


# -- Big Buck Bunny --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_bunny(shared_data) -> vs.VideoNode:
    path = shared_data / "clips" / "big_buck_bunny_0_30.webm"
    return core.bs.VideoSource(str(path)).resize.Bicubic(64, 36, format=vs.RGBS, matrix_in_s="709")


@pytest.mark.slow  # the whole clip: 720 frames decoded and their cut decisions
def test_big_buck_bunny_slots_repeat_exactly_at_its_three_cuts(small_bunny, network, monkeypatch):
    # The cut decisions for all 719 pairs, without running the network 716 times: every
    # interpolated slot becomes -1 (bicubic ringing leaves source values just below 0, so
    # the check is equality with the left frame).
    def marker(self, first, second, t, first_frame, second_frame):
        return np.full((3, small_bunny.height, small_bunny.width), -1.0, np.float32)

    monkeypatch.setattr(PairCache, "interpolated", marker)
    output = vsdain.Interpolate(small_bunny, model=network, tile=0)
    repeated = []
    for k, frame in enumerate(output[1::2].frames()):
        image = planes(frame)
        if np.array_equal(image, planes(small_bunny.get_frame(k))):
            repeated.append(k)
            assert frame.props.get("_SceneChangeNext", 0) == int(k < small_bunny.num_frames - 1)
        else:
            assert (image == -1).all()
    # The last slot repeats the final frame (no next frame), whatever the detector says.
    assert repeated == [282, 375, 550, small_bunny.num_frames - 1]


def test_big_buck_bunny_runs_the_network_beside_a_cut(small_bunny, network):
    clip = small_bunny[281:285]
    output = vsdain.Interpolate(clip, model=network, tile=0)
    cut = output.get_frame(3)
    assert np.array_equal(planes(cut), planes(clip.get_frame(1)))
    for n, left in ((1, 0), (5, 2)):
        image = planes(output.get_frame(n))
        assert not np.array_equal(image, planes(clip.get_frame(left)))


# -- weights and output streams -----------------------------------------------------------------
@pytest.mark.slow  # reads a checkpoint and runs two networks
def test_weights_path_loads_the_checkpoint(random_weights, source):
    reference = vsdain.DAIN()
    reference.load_state_dict(torch.load(random_weights, weights_only=True))
    loaded = vsdain.Interpolate(source[:2], weights=str(random_weights), device="cpu")
    given = vsdain.Interpolate(source[:2], model=reference.eval())
    assert np.array_equal(planes(loaded.get_frame(1)), planes(given.get_frame(1)))


def test_nothing_is_written_to_stdout(network, capfd):
    output = vsdain.Interpolate(moving_clip(2), model=network, tile=0)
    for frame in output.frames():
        planes(frame)
    assert capfd.readouterr().out == ""


def test_model_is_not_moved_or_changed(network, source):
    before = next(network.parameters()).clone()
    vsdain.Interpolate(source[:2], model=network, tile=0).get_frame(1)
    after = next(network.parameters())
    assert after.device.type == "cpu" and after.dtype == torch.float32
    assert torch.equal(before, after)
