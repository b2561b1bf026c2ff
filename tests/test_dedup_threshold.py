"""The default duplicate threshold on real footage in anime cadences, re-encoded with x264:
every true duplicate found, no real change marked (the full measurement is
bench/dedup_threshold.py)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import vapoursynth as vs

from vsdain.filter.dedup import DEFAULT_THRESHOLD, SCORE_PROP, DuplicateDetector

core = vs.core
WIDTH, HEIGHT = 320, 180
# chaplin.mp4 repeats some frames itself; frames whose own change scores below this are
# left out so that every drawing is a real change (see bench/dedup_threshold.py).
SOURCE_DUPLICATE_BELOW = 0.03


def read(path) -> vs.VideoNode:
    clip = core.bs.VideoSource(str(path))
    return clip.resize.Bicubic(WIDTH, HEIGHT, format=vs.YUV420P8).std.AssumeFPS(fpsnum=24)


def encode(clip: vs.VideoNode, path, crf: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in clip.frames(close=True):
            planes = [np.asarray(frame[p]).reshape(-1, WIDTH) for p in range(3)]
            picture = av.VideoFrame.from_ndarray(np.concatenate(planes), format="yuv420p")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def cadence(shared_data, tmp_path_factory):
    """(scores, truth): the scores of a re-encoded stream and, per frame from 1, whether it is
    a true duplicate. The bunny's black opening (frames 0-4 decode identical) and dark fade on
    twos, chaplin on threes and mixed 2/3 with a 12-frame hold, joined by a cut."""
    bunny = read(shared_data / "clips" / "big_buck_bunny_0_30.webm")
    chaplin = read(shared_data / "clips" / "chaplin.mp4")[:40]
    own = [f.props[SCORE_PROP] for f in DuplicateDetector().scores(chaplin).frames(close=True)]
    drawings = [k for k in range(40) if k == 0 or own[k] >= SOURCE_DUPLICATE_BELOW]
    pieces = [(bunny, k, 2) for k in range(24)]
    pieces += [(chaplin, k, 12 if j == 4 else (3, 2)[j % 2]) for j, k in enumerate(drawings[:16])]
    frames, truth = [], []
    for clip, k, hold in pieces:
        frames.append(clip[k] * hold)
        truth += [(clip is chaplin, k)] * hold
    path = tmp_path_factory.mktemp("dedup") / "cadence.mkv"
    encode(core.std.Splice(frames), path, crf=20)
    back = core.bs.VideoSource(str(path), cachemode=0)
    assert back.num_frames == len(truth)
    scores = [f.props[SCORE_PROP] for f in DuplicateDetector().scores(back).frames(close=True)]
    # The bunny's frames 1-4 are black like frame 0: duplicates in the source itself.
    duplicate = [
        truth[j] == truth[j - 1] or (not truth[j][0] and truth[j][1] <= 4)
        for j in range(1, len(truth))
    ]
    return np.array(scores[1:]), np.array(duplicate)


def test_the_default_finds_every_duplicate_and_marks_no_change(cadence):
    scores, duplicate = cadence
    assert 90 <= scores.size <= 130 and duplicate.sum() > 40 and (~duplicate).sum() > 30
    assert scores[duplicate].max() < DEFAULT_THRESHOLD, "a true duplicate was missed"
    assert scores[~duplicate].min() >= DEFAULT_THRESHOLD, "a real change was marked"
