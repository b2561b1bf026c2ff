"""vsdain render without Ray and without the network: chunk plans, encoding, concatenation,
resuming and every bad input. The graph is a numpy-painted script (tests/render_helpers.py),
so each test takes seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from render_helpers import (
    SCRIPT_FPS,
    decoded_frames,
    file_seconds,
    painted,
    stream_seconds,
    write_script,
)

from vsdain.commands import main
from vsdain.render import render
from vsdain.render.plan import ANYWHERE, CUT, SOURCE_FRAME, boundary_costs, plan_chunks

REPO = Path(__file__).resolve().parent.parent


def test_plan_without_costs_cuts_every_chunk_frames():
    chunks = plan_chunks(30, 8)
    assert [(c.start, c.end) for c in chunks] == [(0, 8), (8, 16), (16, 24), (24, 30)]
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_plan_moves_boundaries_to_cuts_then_source_frames():
    # multi=2: output n sits at source n / 2; a scene cut between source frames 10 and 11.
    cost = boundary_costs(lambda n: Fraction(n, 2), lambda pair: pair == 10)
    assert cost([19, 20, 21, 22, 23]) == {20: CUT, 21: CUT, 22: CUT}
    assert cost([13, 14]) == {14: SOURCE_FRAME}
    # 16 +- 4 reaches the cut's first slot (20): no recomputation there; 36 +- 4 has no
    # cut, and 36 is a source frame; 52 likewise.
    assert [c.start for c in plan_chunks(60, 16, cost=cost)] == [0, 20, 36, 52]
    half = boundary_costs(lambda n: Fraction(n, 2), lambda pair: False)
    odd_plan = plan_chunks(60, 15, cost=half, window=3)
    assert [c.start for c in odd_plan][1:3] == [14, 28]  # 15 -> 14 (ties go earlier)
    assert ANYWHERE > SOURCE_FRAME > CUT


def test_chunked_lossless_render_equals_the_script_frames(tmp_path):
    script = write_script(tmp_path / "paint.vpy")
    output = tmp_path / "out.mp4"
    summary = render(
        script, output, codec="libx264", codec_options={"qp": "0"}, chunk_frames=7, progress=False
    )
    assert (summary.frames, summary.chunks, summary.rendered) == (30, 5, 5)
    frames, times = decoded_frames(output)
    assert len(frames) == 30
    for n, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, painted(n), err_msg=f"frame {n}")
    assert times == [n / SCRIPT_FPS for n in range(30)]
    assert stream_seconds(output, "video") == 30 / SCRIPT_FPS
    assert not (tmp_path / ".out.mp4.vsdain").exists()  # work folder removed after success


def test_ffv1_in_matroska_keeps_exact_frames(tmp_path):
    script = write_script(tmp_path / "paint.vpy", length=12)
    output = tmp_path / "out.mkv"
    render(script, output, codec="ffv1", chunk_frames=5, progress=False)
    frames, times = decoded_frames(output)
    assert [n for n, frame in enumerate(frames) if not np.array_equal(frame, painted(n))] == []
    assert times == [n / SCRIPT_FPS for n in range(12)]
    assert file_seconds(output) == 12 / SCRIPT_FPS


def test_plain_progress_lines_and_summary(tmp_path):
    import io

    script = write_script(tmp_path / "paint.vpy", length=10)
    stream = io.StringIO()
    render(script, tmp_path / "out.mkv", codec="ffv1", chunk_frames=4, stream=stream)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines[:3]] == [
        "chunk-00000-0-4",
        "chunk-00001-4-8",
        "chunk-00002-8-10",
    ]
    assert "10 frames in 3 chunks (3 rendered, 0 already done), 0 retries" in lines[-1]


@pytest.mark.slow  # renders in a child process, interrupted and resumed
def test_interrupted_run_resumes_with_only_the_missing_chunks(tmp_path):
    script = write_script(tmp_path / "slow.vpy", length=24, sleep=0.15)
    output = tmp_path / "out.mkv"
    work = tmp_path / "work"
    command = [
        sys.executable, "-m", "vsdain", "render", str(script), str(output),
        "--codec", "ffv1", "--chunk-frames", "4", "--work-dir", str(work),
    ]  # fmt: skip
    driver = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(list(work.glob("job-*/chunk-*.mp4"))) < 2:
            assert driver.poll() is None, "the render finished before it could be interrupted"
            assert time.monotonic() < deadline, "no chunk finished within 120 s"
            time.sleep(0.05)
    finally:
        if driver.poll() is None:
            os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    done_before = len(list(work.glob("job-*/chunk-*.mp4")))
    assert 2 <= done_before < 6 and not output.exists()

    summary = render(script, output, codec="ffv1", chunk_frames=4, work_dir=work, progress=False)
    assert summary.chunks == 6
    assert summary.rendered == 6 - done_before
    frames, times = decoded_frames(output)
    assert [n for n, frame in enumerate(frames) if not np.array_equal(frame, painted(n))] == []
    assert len(frames) == 24 and times[-1] == 23 / SCRIPT_FPS


def test_chunk_that_raises_is_retried_and_output_unchanged(tmp_path):
    script = write_script(tmp_path / "flaky.vpy", length=12, fail_once_at=6)
    output = tmp_path / "out.mkv"
    summary = render(script, output, codec="ffv1", chunk_frames=4, progress=False)
    assert (summary.chunks, summary.retries) == (3, 1)
    frames, _ = decoded_frames(output)
    assert [n for n, frame in enumerate(frames) if not np.array_equal(frame, painted(n))] == []
    assert len(frames) == 12


def test_chunk_failing_every_attempt_stops_the_render(tmp_path):
    from vsdain.render import ChunkError

    script = tmp_path / "broken.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=8)\n"
        "def fail(n, f):\n"
        "    if n >= 4:\n"
        "        raise RuntimeError('broken frame')\n"
        "    return f\n"
        "clip.std.ModifyFrame(clip, fail).set_output()\n"
    )
    with pytest.raises(ChunkError, match="chunk-00001-4-8 failed 3 times"):
        render(
            script, tmp_path / "out.mkv", codec="ffv1", chunk_frames=4, retries=2, progress=False
        )
    assert not (tmp_path / "out.mkv").exists()


def test_changed_settings_or_script_never_reuse_chunks(tmp_path):
    script = write_script(tmp_path / "paint.vpy", length=8)
    work = tmp_path / "work"
    options = {"codec": "ffv1", "chunk_frames": 4, "work_dir": work, "progress": False}
    first = render(script, tmp_path / "a.mkv", keep_chunks=True, **options)
    again = render(script, tmp_path / "b.mkv", keep_chunks=True, **options)
    assert (first.rendered, again.rendered) == (2, 0)  # same job, chunks reused
    other_codec = render(
        script, tmp_path / "c.mp4", **{**options, "codec": "libx264"}, codec_options={"qp": "0"}
    )
    assert other_codec.rendered == 2
    write_script(script, length=8, sleep=0.001)  # a different script, same path and length
    changed = render(script, tmp_path / "d.mkv", **options)
    assert changed.rendered == 2


def run_command(*words: str) -> int:
    return main(["render", *map(str, words)])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["{tmp}/missing.mp4", "{tmp}/out.mkv"], "SOURCE {tmp}/missing.mp4 does not exist"),
        (["{tmp}", "{tmp}/out.mkv"], "is not a file"),
        (["{tmp}/empty.vpy", "{tmp}/out.mkv"], "sets no video output; end it with"),
        (["{tmp}/paint.vpy", "{tmp}/out.xyz"], "no container format for the extension '.xyz'"),
        (["{tmp}/paint.vpy", "{tmp}/out.mkv", "--codec", "nosuch"], "unknown codec 'nosuch'"),
        (["{tmp}/paint.vpy", "{tmp}/out.mkv", "--codec", "aac"], "encodes audio, not video"),
        (
            ["{tmp}/paint.vpy", "{tmp}/out.mkv", "--workers", "0"],
            "--workers must be an integer >= 1",
        ),
        (
            ["{tmp}/paint.vpy", "{tmp}/out.mkv", "--retries", "-1"],
            "--retries must be an integer >= 0",
        ),
        (["{tmp}/paint.vpy", "{tmp}/out.mkv", "--codec-option", "crf"], "KEY=VALUE"),
        (["{tmp}/paint.vpy", "{tmp}/out.mkv", "--fps", "sixty"], "--fps must be NUM or NUM/DEN"),
        (["{tmp}/paint.vpy", "{tmp}/out.mkv", "--width", "64"], "apply to a video file"),
        (["{tmp}/paint.vpy", "{tmp}/nofolder/out.mkv"], "does not exist; create it first"),
    ],
)
def test_bad_input_exits_2_before_rendering(tmp_path, capsys, arguments, message):
    write_script(tmp_path / "paint.vpy", length=4)
    (tmp_path / "empty.vpy").write_text(
        "import vapoursynth as vs\nclip = vs.core.std.BlankClip()\n"
    )
    words = [word.format(tmp=tmp_path) for word in arguments]
    assert run_command(*words) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("vsdain render: ")
    assert message.format(tmp=tmp_path) in captured.err
    assert not list(tmp_path.glob(".out*"))  # no work folder: nothing started


def test_unreachable_address_fails_within_seconds(tmp_path, capsys):
    import socket

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    write_script(tmp_path / "paint.vpy", length=4)
    started = time.monotonic()
    code = run_command(
        tmp_path / "paint.vpy", tmp_path / "out.mkv", "--address", f"127.0.0.1:{port}"
    )
    assert code == 2 and time.monotonic() - started < 10
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers" in capsys.readouterr().err


def test_float_output_node_is_refused_with_a_conversion_hint(tmp_path, capsys):
    script = tmp_path / "float.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "vs.core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=4).set_output()\n"
    )
    assert run_command(script, tmp_path / "out.mkv") == 2
    assert "RGBS, which no encoder takes; convert it" in capsys.readouterr().err
