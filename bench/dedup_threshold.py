"""Measures the duplicate detector's scores on real footage in anime cadences, re-encoded.

    python bench/dedup_threshold.py [--crf 18 23] [--size 640x360] [--data ../shared/data]

Builds one stream from chaplin.mp4 and big_buck_bunny_0_30.webm (the whole 30 s, with its
dark opening fade, its near-still stretches and its three cuts): each source frame is a
"drawing" held for 2 frames (on twos), 3 (on threes), alternately 2 and 3 (mixed), and a few
drawings are held for 12 or 24 frames (still holds); chaplin's end joined to the bunny's start
is one more cut. chaplin.mp4 is itself a film transfer with duplicated frames: its own
duplicates (and its few ambiguous frames) are left out first (see ``drawings``), so that every
drawing is a real change.

The stream is encoded with libx264 through PyAV (yuv420p, preset medium, at each --crf),
read back with ``core.bs.VideoSource`` and scored with :class:`DuplicateDetector`. Ground
truth: a frame is a duplicate when it shows the same drawing as the frame before, or when
the two source frames decode bit-identical (the bunny's black frames 0-4); a cut when the
drawings come from two shots; otherwise a real change. Prints, per crf and per measure, the
distribution of each class, the extremes with the drawings they come from, and the
threshold that separates them with its margin (the factor between it and each class's
nearest score).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# chaplin.mp4 scores, on itself, 0.003-0.008 for its own duplicates, 0.009-0.03 for a few
# frames that may be either (near-still frames at its end among them) and above for clear
# changes: frames below this are left out of the drawings, so every drawing is a change.
SOURCE_DUPLICATE_BELOW = 0.03
# (name, shot, source frame ranges) of the stretches whose changes are reported apart.
REGIONS = [
    ("chaplin", 0, [range(10_000)]),
    ("bunny, dark opening fade (5-40)", 1, [range(5, 41)]),
    (
        "bunny, near-still (270-282, 375-390, 540-550)",
        1,
        [range(270, 283), range(375, 391), range(540, 551)],
    ),
    ("bunny, the rest", 1, [range(41, 270), range(283, 375), range(391, 540), range(551, 720)]),
]


def drawings(clip, detector) -> list[int]:
    """Frames of ``clip`` that clearly change from the frame before in the source itself."""
    scores = [f.props["DainDuplicateScore"] for f in detector.scores(clip).frames(close=True)]
    kept = [k for k in range(len(scores)) if k == 0 or scores[k] >= SOURCE_DUPLICATE_BELOW]
    below = sorted(s for s in scores[1:] if s < SOURCE_DUPLICATE_BELOW)
    above = sorted(s for s in scores[1:] if s >= SOURCE_DUPLICATE_BELOW)
    print(
        f"chaplin.mp4 source: {len(below)} frames left out (score up to {below[-1]:.5f}), "
        f"{len(above)} changes (from {above[0]:.5f}); {len(kept)} drawings kept",
        file=sys.stderr,
    )
    return kept


def cadence(count: int, pattern: list[int], holds: dict[int, int]) -> list[int]:
    """How many frames each of ``count`` drawings is held: ``pattern`` cycled, except the
    drawings in ``holds``."""
    return [holds.get(k, pattern[k % len(pattern)]) for k in range(count)]


def build_stream(data: Path, width: int, height: int):
    """(clip, truth): the cadence stream as YUV420P8 at width x height, and per frame
    (shot, source index)."""
    import vapoursynth as vs

    from vsdain.filter.dedup import DuplicateDetector

    core = vs.core

    def read(name: str):
        clip = core.bs.VideoSource(str(data / "clips" / name))
        return clip.resize.Bicubic(width, height, format=vs.YUV420P8).std.AssumeFPS(
            fpsnum=24, fpsden=1
        )

    chaplin = read("chaplin.mp4")
    bunny = read("big_buck_bunny_0_30.webm")
    chaplin_drawings = drawings(chaplin, DuplicateDetector())
    half = len(chaplin_drawings) // 2
    chaplin_holds = cadence(half, [2, 3], {half // 2: 24}) + cadence(
        len(chaplin_drawings) - half, [3], {}
    )
    bunny_holds = (
        cadence(180, [2], {20: 12, 100: 24})
        + cadence(180, [3], {120: 24})
        + cadence(180, [2, 3], {})
        + cadence(180, [2], {})
    )
    truth = []
    pieces = []
    for shot, (clip, frames, holds) in enumerate(
        [(chaplin, chaplin_drawings, chaplin_holds), (bunny, range(bunny.num_frames), bunny_holds)]
    ):
        for index, hold in zip(frames, holds, strict=True):
            truth += [(shot, index)] * hold
            pieces.append(clip[index] * hold)
    return core.std.Splice(pieces), truth, (chaplin, bunny)


def encode(clip, path: Path, crf: int) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in clip.frames(close=True):
            planes = [np.asarray(frame[p]).reshape(-1, clip.width) for p in range(3)]
            picture = av.VideoFrame.from_ndarray(np.concatenate(planes), format="yuv420p")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def classify(truth, shots) -> list[str]:
    """'duplicate', 'change' or 'cut' for frames 1.. of the stream."""
    identical = {}

    def same_source(shot: int, index: int) -> bool:
        # Consecutive drawings that decode bit-identical are duplicates in the source itself.
        key = (shot, index)
        if key not in identical:
            clip = shots[shot]
            a, b = clip.get_frame(index - 1), clip.get_frame(index)
            identical[key] = all(
                np.array_equal(np.asarray(a[p]), np.asarray(b[p])) for p in range(3)
            )
        return identical[key]

    classes = []
    for (shot_a, a), (shot_b, b) in itertools.pairwise(truth):
        if (shot_a, a) == (shot_b, b):
            classes.append("duplicate")
        elif shot_a != shot_b:
            classes.append("cut")
        elif b == a + 1 and same_source(shot_b, b):
            classes.append("duplicate")
        else:
            classes.append("change")
    return classes


def summary(values: np.ndarray) -> str:
    if values.size == 0:
        return "-"
    p1, median, p99 = np.percentile(values, [1, 50, 99])
    return (
        f"{values.size:5d} | {values.min():.5f} | {p1:.5f} | {median:.5f} | {p99:.5f} | "
        f"{values.max():.5f}"
    )


def measure(clip_path: Path, truth, shots) -> dict[str, np.ndarray]:
    import vapoursynth as vs

    from vsdain.filter.dedup import (
        BRIGHTNESS_PROP,
        BRIGHTNESS_WEIGHT,
        LOCAL_PROP,
        SCORE_PROP,
        DuplicateDetector,
    )

    back = vs.core.bs.VideoSource(str(clip_path), cachemode=0)
    if back.num_frames != len(truth):
        raise RuntimeError(f"read back {back.num_frames} frames, wrote {len(truth)}")
    props = [dict(f.props) for f in DuplicateDetector().scores(back).frames(close=True)]
    return {
        "local": np.array([p[LOCAL_PROP] for p in props[1:]]),
        "brightness * BRIGHTNESS_WEIGHT": np.array([p[BRIGHTNESS_PROP] for p in props[1:]])
        * BRIGHTNESS_WEIGHT,
        "score": np.array([p[SCORE_PROP] for p in props[1:]]),
    }


def report(crf: int, columns, classes, truth) -> float:
    classes = np.array(classes)
    print(f"\n### x264 crf {crf}\n")
    print("| measure | class | frames | min | p1 | median | p99 | max |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, values in columns.items():
        for kind in ("duplicate", "change", "cut"):
            print(f"| {name} | {kind} | {summary(values[classes == kind])} |")
    score = columns["score"]
    duplicates, changes = score[classes == "duplicate"], score[classes != "duplicate"]
    highest, lowest = duplicates.max(), changes.min()
    names = ["chaplin", "bunny"]

    def where(mask_kind: str, order: np.ndarray, count: int) -> str:
        picks = [j for j in order if classes[j] == mask_kind][:count]
        return ", ".join(
            f"{names[truth[j + 1][0]]} {truth[j + 1][1]}: {score[j]:.5f}" for j in picks
        )

    print(f"\nhighest duplicates: {where('duplicate', np.argsort(-score), 5)}")
    print(f"lowest changes: {where('change', np.argsort(score), 8)}")
    for region, shot, ranges in REGIONS:
        picked = [
            score[j]
            for j in range(len(score))
            if classes[j] == "change"
            and truth[j + 1][0] == shot
            and any(truth[j + 1][1] in frames for frames in ranges)
        ]
        print(f"lowest change in {region}: {min(picked):.5f} ({len(picked)} changes)")
    if highest < lowest:
        middle = math.sqrt(highest * lowest)
        print(
            f"separated: duplicates <= {highest:.5f} < {lowest:.5f} <= changes; geometric middle "
            f"{middle:.5f} (x{middle / highest:.2f} above the highest duplicate, "
            f"x{lowest / middle:.2f} below the lowest change)"
        )
    else:
        overlap = int((changes <= highest).sum())
        print(f"not separated: {overlap} changes score at or below the highest duplicate")
        middle = math.nan
    return middle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crf", type=int, nargs="+", default=[18, 23])
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from vsdain.filter.dedup import BRIGHTNESS_WEIGHT, DEFAULT_THRESHOLD, THUMBNAIL_WIDTH

    width, height = (int(value) for value in args.size.lower().split("x"))
    stream, truth, shots = build_stream(args.data, width, height)
    classes = classify(truth, shots)
    print(f"# Duplicate scores, {len(truth)} frames at {width}x{height}")
    print(
        f"\nTHUMBNAIL_WIDTH = {THUMBNAIL_WIDTH}, BRIGHTNESS_WEIGHT = {BRIGHTNESS_WEIGHT}, "
        f"DEFAULT_THRESHOLD = {DEFAULT_THRESHOLD}"
    )
    with tempfile.TemporaryDirectory() as folder:
        for crf in args.crf:
            path = Path(folder) / f"cadence-crf{crf}.mkv"
            started = time.perf_counter()
            encode(stream, path, crf)
            print(f"encoded crf {crf} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            columns = measure(path, truth, shots)
            report(crf, columns, classes, truth)
            score, kinds = columns["score"], np.array(classes)
            missed = int((score[kinds == "duplicate"] >= DEFAULT_THRESHOLD).sum())
            marked = int((score[kinds != "duplicate"] < DEFAULT_THRESHOLD).sum())
            print(
                f"at DEFAULT_THRESHOLD: {missed} duplicates missed, {marked} changes marked "
                "as duplicates"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
