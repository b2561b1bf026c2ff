"""vsdain render on local Ray workers: a chunked render of a real clip through the network
(random weights) equals a single in-process render frame for frame, a worker killed in the
middle of a chunk or raising while rendering is retried without changing the output, and a
worker that cannot build the graph is not retried.

Ray runs locally only (2 CPUs, no dashboard, loopback), once for the module, and every test
is bounded by an alarm. All are in the slow tier: starting Ray takes seconds by itself. The
same decisions without Ray (which errors are retried, damaged chunks rendered again) are in
test_render_robustness.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from render_helpers import (
    SCRIPT_FPS,
    decoded_frames,
    painted,
    stream_seconds,
    time_limited,
    write_script,
)

from vsdain.render import render
from vsdain.render.plan import Chunk
from vsdain.render.state import WorkFolder

ray = pytest.importorskip("ray", reason="ray is part of the dev extra")

TEST_SECONDS = 420  # a hung cluster fails the test instead of blocking the suite


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def time_limit():
    with time_limited(TEST_SECONDS):
        yield


@pytest.mark.slow  # Ray workers running the network on a real clip
def test_two_ray_workers_match_one_process_on_a_real_clip(
    local_ray, shared_data, random_weights, tmp_path
):
    clip = shared_data / "clips" / "chaplin.mp4"
    # 12 source frames at 25 fps, doubled: 24 output frames at 50 fps, 3 chunks of 8.
    common = {
        "weights": random_weights,
        "width": 64,
        "height": 48,
        "frames": 12,
        "codec": "ffv1",
        "device": "cpu",
        "progress": False,
    }
    single = render(clip, tmp_path / "single.mkv", chunk_frames=1000, **common)
    chunked = render(clip, tmp_path / "chunked.mkv", chunk_frames=8, workers=2, **common)
    assert (single.chunks, chunked.chunks, chunked.frames) == (1, 3, 24)

    reference, reference_times = decoded_frames(tmp_path / "single.mkv")
    frames, times = decoded_frames(tmp_path / "chunked.mkv")
    assert len(reference) == len(frames) == 24
    different = [n for n in range(24) if not np.array_equal(frames[n], reference[n])]
    assert different == []
    assert times == reference_times == [Fraction(n, 50) for n in range(24)]
    # Synthesised frames differ from both neighbours: the network ran, not a copy.
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[1], frames[2])

    # The clip's audio (MP3), trimmed to the same 12 source frames at packet precision.
    audio = stream_seconds(tmp_path / "chunked.mkv", "audio")
    assert abs(audio - Fraction(12, 25)) <= Fraction(30, 1000)


@pytest.mark.slow  # a Ray worker killed mid-chunk and the chunk retried
def test_killed_worker_is_retried_and_output_unchanged(local_ray, tmp_path):
    script = write_script(tmp_path / "slow.vpy", length=24, sleep=0.1)
    output = tmp_path / "out.mkv"
    work = tmp_path / "work"
    killed: list[int] = []

    def kill_one_worker_mid_chunk() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for progress in work.glob("job-*/chunk-*.progress"):
                folder = WorkFolder(progress.parent, ".mp4")
                chunk = _chunk_of(progress)
                attempts = folder.attempts(chunk)
                if attempts and 0 < folder.frames_encoded(chunk) < chunk.frames:
                    os.kill(attempts[-1], signal.SIGKILL)
                    killed.append(attempts[-1])
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_mid_chunk)
    killer.start()
    summary = render(
        script, output, codec="ffv1", chunk_frames=6, workers=2, work_dir=work, progress=False
    )
    killer.join()
    assert killed, "no worker was seen in the middle of a chunk"
    assert summary.retries >= 1 and summary.chunks == 4
    frames, times = decoded_frames(output)
    assert [n for n, frame in enumerate(frames) if not np.array_equal(frame, painted(n))] == []
    assert times == [n / SCRIPT_FPS for n in range(24)]


@pytest.mark.slow  # a Ray instance and its workers (the start alone takes 4 to 6 s)
def test_raising_chunk_is_retried_on_ray(local_ray, tmp_path):
    script = write_script(tmp_path / "flaky.vpy", length=12, fail_once_at=6)
    output = tmp_path / "out.mkv"
    summary = render(script, output, codec="ffv1", chunk_frames=4, workers=2, progress=False)
    assert (summary.chunks, summary.retries) == (3, 1)
    frames, _ = decoded_frames(output)
    assert [n for n, frame in enumerate(frames) if not np.array_equal(frame, painted(n))] == []


@pytest.mark.slow  # a Ray instance and its workers
def test_graph_that_cannot_be_built_is_not_retried_on_ray(local_ray, tmp_path):
    from test_render_robustness import GONE_IN_WORKERS

    from vsdain.render import ChunkError

    script = tmp_path / "gone.vpy"
    script.write_text(GONE_IN_WORKERS.format(marker=str(tmp_path / "ran")))
    work = tmp_path / "work"
    started = time.monotonic()
    with pytest.raises(ChunkError, match=r"cannot build the graph.*the source is gone"):
        render(
            script,
            tmp_path / "out.mkv",
            codec="ffv1",
            chunk_frames=4,
            workers=2,
            retries=3,
            work_dir=work,
            progress=False,
        )
    attempts = [len(path.read_text().split()) for path in work.glob("job-*/*.attempts")]
    assert attempts and max(attempts) == 1, attempts
    assert time.monotonic() - started < 60


def _chunk_of(progress: Path) -> Chunk:
    _, index, start, end = progress.name.removesuffix(".progress").split("-")
    return Chunk(int(index), int(start), int(end))
