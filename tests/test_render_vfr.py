"""vsdain render of variable-frame-rate files: the container's timestamps are read without
decoding, a VFR file needs an output rate, and it is rendered on its true timeline in
chunks, its audio in sync.

The clip is the one a phone or a screen recorder makes when it drops frames: 3 s of a bar
moving one column per 1/30 s, its frames lasting 1/30 s, then 1/15 s for one second (every
other frame missing), then 1/30 s again; core.bs.VideoSource reports its average rate,
2220/89. Placed by that rate, the frame taken at 2.0 s would be shown at about 1.8 s.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from render_helpers import (
    bar,
    bar_position,
    blank_output,
    decoded_frames,
    decoded_pictures,
    stream_seconds,
    stream_start,
    time_limited,
    write_video,
)

import vsdain
from vsdain import weights as weights_module
from vsdain.commands import main
from vsdain.render import RenderError, render
from vsdain.render import job as job_module
from vsdain.render.job import audio_window
from vsdain.render.options import check_filter_options
from vsdain.render.timestamps import ContainerTimes, read_times, snap_to_rate

TEST_SECONDS = 300
# Frame k's time: 30 frames 1/30 s apart, 15 frames 1/15 s apart, 30 frames 1/30 s apart.
TAKEN = (
    [Fraction(k, 30) for k in range(30)]
    + [1 + Fraction(k, 15) for k in range(15)]
    + [2 + Fraction(k, 30) for k in range(30)]
)
DURATION = Fraction(3)


@pytest.fixture(autouse=True)
def time_limit():
    with time_limited(TEST_SECONDS):
        yield


def dropped_frames_clip(path: Path) -> Path:
    """The clip of the module docstring, lossless (ffv1), with 3 s of AAC audio; 112x32
    (pads to 128x128 for the network, the cheapest size)."""
    pictures = [bar(int(time * 30)) for time in TAKEN]
    return write_video(path, pictures, times=TAKEN, rate=Fraction(30), audio_seconds=DURATION)


@pytest.fixture(scope="module")
def vfr_mp4(tmp_path_factory) -> Path:
    return dropped_frames_clip(tmp_path_factory.mktemp("vfr") / "dropped.mp4")


# --- reading the timestamps (no network) ---------------------------------------------------


def test_mp4_timestamps_are_read_exactly_and_found_variable(vfr_mp4):
    times = read_times(vfr_mp4)
    assert times.frames == 75 and times.is_variable
    assert times.seconds() == [*TAKEN, DURATION]  # starts, then the end of the last frame
    assert times.average_rate == 25


def test_matroska_millisecond_timestamps_snap_onto_the_output_rate(tmp_path):
    times = read_times(dropped_frames_clip(tmp_path / "dropped.mkv"))
    assert times.time_base == Fraction(1, 1000) and times.is_variable
    assert times.seconds()[1] == Fraction(33, 1000)  # 1/30 s, rounded by the container
    # Within half a tick of an output time at 30 fps: each is that output time again.
    assert snap_to_rate(times.seconds(), Fraction(30), times.time_base) == [*TAKEN, DURATION]
    # At 24 fps most are not near an output time and keep the container's value.
    at_24 = snap_to_rate(times.seconds(), Fraction(24), times.time_base)
    assert at_24[1] == Fraction(33, 1000)
    assert at_24[5] == Fraction(4, 24)  # 167 ms, taken at 1/6 s: on the 24 fps grid too


def test_constant_rate_files_are_not_variable(tmp_path):
    pictures = [bar(k) for k in range(12)]
    for name, rate in (("ntsc.mkv", Fraction(30000, 1001)), ("film.mp4", Fraction(24000, 1001))):
        times = read_times(write_video(tmp_path / name, pictures, rate=rate))
        assert not times.is_variable, (name, sorted(set(times.durations)))


def test_audio_window_follows_the_timeline_when_trimmed():
    seconds = [*TAKEN, DURATION]
    assert audio_window(30, 50, 75, rate=Fraction(25), seconds=seconds) == (
        Fraction(1),
        Fraction(2) + Fraction(5, 30),
    )
    assert audio_window(45, 75, 75, rate=Fraction(25), seconds=seconds) == (Fraction(2), None)
    assert audio_window(10, 20, 75, rate=Fraction(25)) == (Fraction(10, 25), Fraction(20, 25))


def test_variable_rate_needs_fps_and_the_error_suggests_rates(vfr_mp4, tmp_path, capsys):
    code = main(["render", str(vfr_mp4), str(tmp_path / "out.mkv"), "--multi", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "has a variable frame rate (frames last 33.3 to 66.7 ms)" in err
    assert "needs an output rate, --fps: e.g. 25 (its average rate), or 24000/1001, " in err
    assert "30000/1001, 60000/1001, 60" in err
    assert not list(tmp_path.glob(".out*"))


def test_timestamps_that_do_not_match_the_decoded_frames_are_refused(
    vfr_mp4, tmp_path, monkeypatch
):
    real = read_times(vfr_mp4)
    short = ContainerTimes(real.ticks[:-1], real.ticks[-1], real.time_base)
    monkeypatch.setattr(job_module, "read_times", lambda path: short)
    mismatch = r"74 video timestamps and core\.bs\.VideoSource decodes 75 frames"
    with pytest.raises(RenderError, match=mismatch):
        render(vfr_mp4, tmp_path / "out.mkv", fps_num=30, progress=False)


def test_a_constant_rate_file_passes_no_timeline(tmp_path, monkeypatch):
    source = write_video(tmp_path / "cfr.mkv", [bar(k) for k in range(4)], rate=Fraction(30))
    weights = tmp_path / "best.pth"
    weights.write_bytes(b"not read")
    seen = []

    def recorder(clip, **keywords):
        seen.append(keywords)
        return clip.std.BlankClip(length=8, fpsnum=60, fpsden=1, keep=True)

    monkeypatch.setattr(vsdain, "Interpolate", recorder)
    monkeypatch.setattr(weights_module, "load_model", lambda *args, **kwargs: object())
    render(source, tmp_path / "out.mkv", weights=weights, codec="ffv1", progress=False)
    assert seen and all("timeline" not in keywords for keywords in seen)


# --- on the true timeline (need Interpolate's timeline=) -----------------------------------


def test_trimmed_vfr_render_gives_the_filter_its_part_of_the_timeline(
    vfr_mp4, tmp_path, monkeypatch
):
    """Frames 30..49: the 1/15 s second and the first 5 frames after it; their times from
    frame 30's, and the end of frame 49 (frame 50's start). Chunks all get that timeline and
    render their own output frames of it, so boundaries land exactly where one render's
    frames would."""
    weights = tmp_path / "best.pth"
    weights.write_bytes(b"not read")
    seen = []

    def recorder(clip, **keywords):
        seen.append(keywords)
        model = keywords.pop("model")
        assert model is network
        settings = check_filter_options(clip, {**keywords, "weights": weights})
        return blank_output(clip, settings)

    network = object()
    monkeypatch.setattr(vsdain, "Interpolate", recorder)
    monkeypatch.setattr(weights_module, "load_model", lambda *args, **kwargs: network)
    output = tmp_path / "out.mkv"
    summary = render(
        vfr_mp4,
        output,
        fps_num=30,
        first=30,
        frames=20,
        weights=weights,
        codec="ffv1",
        chunk_frames=10,
        progress=False,
    )
    expected = [time - 1 for time in TAKEN[30:51]]  # 20 starts and the end
    assert len(seen) == summary.chunks >= 3
    assert all(keywords["timeline"] == tuple(expected) for keywords in seen)
    assert all(keywords["fps_num"] == 30 and "multi" not in keywords for keywords in seen)
    assert summary.frames == 35  # 7/6 s at 30 fps
    # The audio of those 7/6 s, at packet precision (AAC: 1024 samples, 21 ms).
    audio = stream_seconds(output, "audio") - stream_start(output, "audio")
    assert abs(audio - Fraction(7, 6)) <= Fraction(1024, 48000) * 2


@pytest.mark.slow  # the random network over a whole VFR file
def test_vfr_render_shows_every_frame_when_it_was_taken(vfr_mp4, random_weights, tmp_path):
    output = tmp_path / "out.mp4"  # exact timestamps (Matroska's are in ms)
    # 40-frame chunks: the second starts at 1.33 s, inside the 1/15 s second.
    summary = render(
        vfr_mp4,
        output,
        fps_num=30,
        weights=random_weights,
        device="cpu",
        codec="ffv1",
        chunk_frames=40,
        progress=False,
    )
    fps = Fraction(30)
    assert summary.frames == DURATION * fps and summary.chunks == 3
    frames, times = decoded_frames(output)
    assert times == [n / fps for n in range(90)]
    source = decoded_pictures(vfr_mp4)
    by_bar = {bar_position(picture): k for k, picture in enumerate(source)}
    shown_at: dict[int, list[int]] = {}
    for n, picture in enumerate(frames):
        k = by_bar.get(bar_position(picture))
        if k is not None and np.array_equal(picture, source[k]):
            shown_at.setdefault(k, []).append(n)
    # Every source frame lies on the 30 fps grid: each is shown, bit-exact, exactly once,
    # within half an output frame of when it was taken (here: exactly then).
    assert sorted(shown_at) == list(range(75))
    late = {
        k: [float(n / fps - TAKEN[k]) for n in shown]
        for k, shown in shown_at.items()
        if len(shown) != 1 or abs(shown[0] / fps - TAKEN[k]) > 1 / (2 * fps)
    }
    assert late == {}
    # Video and audio last as long as the source's, and start together.
    video_end = times[-1] + 1 / fps
    assert abs(video_end - DURATION) <= 1 / fps
    audio_end = stream_seconds(output, "audio")
    assert abs(audio_end - stream_seconds(vfr_mp4, "audio")) <= 1 / fps
    assert abs(stream_start(output, "audio") - stream_start(vfr_mp4, "audio")) <= 1 / fps
