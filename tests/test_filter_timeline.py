"""Variable frame rate: timelines read from timecodes files, lists and frame durations, with
errors naming the line; output frames placed on the true timeline exactly (Fractions); a
constant-rate timeline gives the frames of the plain filter.

The network's frames are replaced by the blend (1 - t) * first + t * second, so every output
frame's pair and t can be read back from its pixels."""

from __future__ import annotations

import bisect
from fractions import Fraction

import numpy as np
import pytest
import vapoursynth as vs
from filter_clips import clip_from_arrays, pattern, planes, random_network

import vsdain
from vsdain.filter.timeline import read_timeline
from vsdain.filter.timing import FrameTiming

core = vs.core


@pytest.fixture(scope="module")
def network():
    return random_network()


def dropped_frames_timeline() -> list[Fraction]:
    """Frames of 1/30 s for 0.2 s, then 1/15 s for 0.2 s (dropped frames), then 1/30 s."""
    times, now = [], Fraction(0)
    for duration, count in ((Fraction(1, 30), 6), (Fraction(1, 15), 3), (Fraction(1, 30), 6)):
        for _ in range(count):
            times.append(now)
            now += duration
    return [*times, now]


def write_v2(path, milliseconds):
    path.write_text("# timecode format v2\n" + "".join(f"{ms}\n" for ms in milliseconds))
    return path


def test_a_v2_file_is_read_exactly_with_or_without_the_end(tmp_path):
    clip = core.std.BlankClip(length=3)
    with_end = write_v2(tmp_path / "a.txt", ["0", "33.367", "66.733", "100.1"])
    assert read_timeline(with_end, clip) == (
        Fraction(0),
        Fraction(33367, 10**6),
        Fraction(66733, 10**6),
        Fraction(1001, 10**4),
    )
    without_end = write_v2(tmp_path / "b.txt", ["0", "40", "120"])
    assert read_timeline(str(without_end), clip)[-1] == Fraction(200, 1000)


def test_lists_of_seconds_and_fractions():
    clip = core.std.BlankClip(length=3)
    assert read_timeline([0, 0.04, Fraction(1, 10)], clip) == (
        Fraction(0),
        Fraction(1, 25),
        Fraction(1, 10),
        Fraction(16, 100),
    )


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["0", "40", "abc"], "line 4: 'abc' is not a time"),
        (["0", "40", "40"], "line 4: 0.04 s does not come after 0.04 s"),
        (["0", "40"], "2 times, the clip 3 frames"),
        (["0", "40", "80", "120", "160"], "5 times, the clip 3 frames"),
    ],
)
def test_bad_timecodes_name_the_line(tmp_path, lines, message):
    path = write_v2(tmp_path / "t.txt", lines)
    with pytest.raises(vs.Error, match="timeline") as caught:
        vsdain.Interpolate(core.std.BlankClip(length=3), fps_num=60, timeline=path)
    assert message in str(caught.value)


def test_a_file_that_is_not_v2_names_line_one(tmp_path):
    path = tmp_path / "v1.txt"
    path.write_text("# timecode format v1\nassume 25\n")
    with pytest.raises(vs.Error, match="line 1: expected '# timecode format v2'"):
        vsdain.Interpolate(core.std.BlankClip(length=3), fps_num=60, timeline=path)


def test_a_timeline_needs_an_output_rate_and_no_multi():
    clip = core.std.BlankClip(length=3)
    with pytest.raises(vs.Error, match="timeline needs an output rate: give fps_num"):
        vsdain.Interpolate(clip, timeline=[0, 1, 2])
    with pytest.raises(vs.Error, match="multi"):
        vsdain.Interpolate(clip, 4, fps_num=60, timeline=[0, 1, 2])
    with pytest.raises(vs.Error, match=r"timeline\[1\] must be a number"):
        vsdain.Interpolate(clip, fps_num=60, timeline=[0, None, 2])


def test_durations_are_added_up_from_the_frames():
    clip = core.std.BlankClip(length=3, fpsnum=30)
    halved = core.std.Splice([clip[0], clip[1].std.AssumeFPS(fpsnum=15), clip[2]])
    assert read_timeline("durations", halved) == tuple(
        Fraction(k) for k in (0, Fraction(1, 30), Fraction(3, 30), Fraction(4, 30))
    )
    unset = clip.std.RemoveFrameProps(["_DurationNum"])
    with pytest.raises(vs.Error, match="frame 0 has _DurationNum=None"):
        vsdain.Interpolate(unset, fps_num=60, timeline="durations")


def expected_frame(time: Fraction, times: list[Fraction], sources: list[np.ndarray]):
    """What the output at ``time`` must hold: the source frame starting then, the blend of the
    two around it, or the last frame past the last start."""
    a = bisect.bisect_right(times, time) - 1
    if times[a] == time or a == len(sources) - 1:
        return sources[a], None
    t = (time - times[a]) / (times[a + 1] - times[a])
    return ((1 - float(t)) * sources[a] + float(t) * sources[a + 1]).astype(np.float32), t


def test_output_frames_sit_on_the_true_timeline(network, blended):
    times = dropped_frames_timeline()
    arrays = [pattern(4 * n) for n in range(len(times) - 1)]
    clip = clip_from_arrays(arrays, fps=(2220, 89))  # the average rate a source reports
    output = vsdain.Interpolate(clip, fps_num=60, timeline=times, sc=False, model=network)
    duration = times[-1] - times[0]
    assert output.num_frames == int(duration * 60) and output.fps == 60
    shown = {}
    for n in range(output.num_frames):
        frame = output.get_frame(n)
        expected, t = expected_frame(Fraction(n, 60), times, arrays)
        assert np.array_equal(planes(frame), expected), n
        if t is None:
            shown.setdefault(frame.props["TestSource"], n)
        assert (frame.props["_DurationNum"], frame.props["_DurationDen"]) == (1, 60)
    # Every source frame appears, bit-exact, at the output frame of the time it was taken.
    assert shown == {k: int(times[k] * 60) for k in range(len(arrays))}
    # The long frames are interpolated at thirds and quarters of their span, exactly.
    assert (6, 7, Fraction(1, 4)) in blended and (7, 8, Fraction(3, 4)) in blended


def test_a_constant_rate_timeline_gives_the_plain_filters_frames(network, blended):
    arrays = [pattern(3 * n) for n in range(6)]
    clip = clip_from_arrays(arrays, fps=(25, 1))
    plain = vsdain.Interpolate(clip, fps_num=60, model=network)
    timed = vsdain.Interpolate(
        clip, fps_num=60, model=network, timeline=[Fraction(k, 25) for k in range(6)]
    )
    assert timed.num_frames == plain.num_frames
    for n in range(plain.num_frames):
        assert np.array_equal(planes(plain.get_frame(n)), planes(timed.get_frame(n))), n


def test_dedup_and_cuts_on_a_timeline(network, blended):
    times = [Fraction(0), Fraction(1, 30), Fraction(3, 30), Fraction(4, 30), Fraction(6, 30)]
    # Frame 2 repeats frame 1; between 3 and 4 a cut.
    arrays = [pattern(0), pattern(4), pattern(4), pattern(8), 1 - 0.9 * pattern(30)]
    clip = clip_from_arrays(arrays, fps=(25, 1))
    output = vsdain.Interpolate(
        clip, fps_num=30, timeline=times, dedup=True, sc_threshold=1.5, model=network
    )
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    assert len(frames) == 8  # the last frame lasts as long as the one before: to 8/30
    # Output 2 (time 2/30) lies inside frame 1's span (1/30 .. 3/30); frame 2 is a duplicate,
    # so the pair is (1, 3) at t = (2/30 - 1/30) / (4/30 - 1/30) = 1/3.
    assert (1, 3, Fraction(1, 3)) in blended
    cut_next = [n for n, f in enumerate(frames) if f.props.get("_SceneChangeNext") == 1]
    # The cut sits at frame 4's start, 6/30: output 5 (5/30) is the last before it.
    assert cut_next == [5]
    assert np.array_equal(planes(frames[5]), planes(clip.get_frame(3)))


def test_timing_positions_follow_the_timeline():
    times = dropped_frames_timeline()
    timing = FrameTiming.from_timeline(times, Fraction(60))
    assert timing.position(0) == 0
    assert timing.position(2) == 1
    assert timing.position(13) == 6 + Fraction(1, 4)
    assert timing.select_every()[1][:16] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 6, 6]
    with pytest.raises(ValueError, match="must increase"):
        FrameTiming.from_timeline([0, 1, 1], Fraction(60))
