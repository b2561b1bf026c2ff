"""What chunking costs: network calls and wall time of a chunked render against one chunk.

    .venv/bin/python bench/render_overhead.py CLIP --weights best.pth [--frames 16]

Runs in this process (so the calls can be counted): once as one chunk, once in chunks of
--chunk-frames; prints per run the wall time and the calls of DAIN.frame_features,
pair_features and synthesize, then the extra calls per chunk boundary. With --ray-workers N
it also times a chunked run on N local Ray workers (their calls are not counted). Random
weights are fine: the cost does not depend on the values.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from vsdain.model import DAIN
from vsdain.render import render

COUNTED = ("frame_features", "pair_features", "synthesize")


def counting(calls: Counter) -> None:
    for name in COUNTED:
        original = getattr(DAIN, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        setattr(DAIN, name, counted)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--frames", type=int, default=16, help="source frames")
    parser.add_argument("--chunk-frames", type=int, default=8)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--ray-workers", type=int, default=0)
    args = parser.parse_args()
    calls: Counter = Counter()
    counting(calls)
    common = {
        "weights": args.weights,
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "codec": "ffv1",
        "device": "cpu",
        "progress": False,
    }
    with tempfile.TemporaryDirectory() as folder:
        results = {}
        runs = [
            ("one chunk", {"chunk_frames": 10**6}),
            ("chunked", {"chunk_frames": args.chunk_frames}),
        ]
        if args.ray_workers:
            runs.append(
                (
                    f"chunked, {args.ray_workers} Ray workers",
                    {"chunk_frames": args.chunk_frames, "workers": args.ray_workers},
                )
            )
        for label, options in runs:
            calls.clear()
            started = time.perf_counter()
            summary = render(args.clip, Path(folder) / f"{len(results)}.mkv", **common, **options)
            seconds = time.perf_counter() - started
            results[label] = (summary, seconds, dict(calls))
            print(
                f"{label}: {summary.frames} frames, {summary.chunks} chunks, {seconds:.1f} s, "
                f"calls {dict(calls)}"
            )
        (one, one_s, one_calls), (many, many_s, many_calls) = (
            results["one chunk"],
            results["chunked"],
        )
        boundaries = many.chunks - one.chunks
        for name in COUNTED:
            extra = many_calls.get(name, 0) - one_calls.get(name, 0)
            print(
                f"{name}: {extra} extra over {boundaries} boundaries = "
                f"{extra / boundaries:.2f} per boundary"
            )
        print(f"chunked / one chunk wall time: {many_s / one_s:.3f}")


if __name__ == "__main__":
    main()
