"""Peak memory of vsdain.Interpolate against VapourSynth's thread count.

Each setting runs in its own process (peak RSS is per process, and MALLOC_ARENA_MAX must be
set before the C library starts): a 448x256 moving clip, the random network, multi=2, the
first few output frames requested the way vspipe does (``frames()``, num_threads ahead).
"inline" runs the tensor work on VapourSynth's threads, as the filter did before it had its
worker thread; "worker" is the filter as it is. Random weights: memory and time only.

``--distinct`` asks instead for one synthesised frame of each of ``frames - 1`` distinct
pairs all at once (``get_frame_async``), the worst case for memory: "unbounded" keeps pairs in
a plain LRU cache, as the filter did before its pairs were leased, so every pair being
computed or waiting for its synthesis stays alive; "leased" is the filter as it is.

    .venv/bin/python bench/filter_threads_memory.py            # the table
    .venv/bin/python bench/filter_threads_memory.py --frames 4
    .venv/bin/python bench/filter_threads_memory.py --distinct --frames 9
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

WIDTH, HEIGHT = 448, 256
SETTINGS = [  # (threads, mode, MALLOC_ARENA_MAX or None)
    (1, "inline", None),
    (8, "inline", None),
    (8, "inline", "1"),
    (1, "worker", None),
    (8, "worker", None),
]
DISTINCT_SETTINGS = [(1, "leased", None), (8, "unbounded", None), (8, "leased", None)]


def _unbounded_pairs(self, first, second, t, first_frame, second_frame):
    """PairCache.interpolated with an LRU cache of pairs and no lease (the filter before)."""
    pair = self.pairs.get(
        (first, second), lambda: self._pair_features(first, second, first_frame, second_frame)
    )
    return self._on_worker(self._synthesize, pair, t)


def child(threads: int, mode: str, frames: int) -> dict[str, float]:
    import resource

    import numpy as np
    import torch
    import vapoursynth as vs

    import vsdain
    from vsdain.filter.frames import planes_to_frame
    from vsdain.filter.pair_cache import PairCache

    if mode == "inline":
        PairCache._on_worker = lambda self, work, *args: work(*args)
    if mode == "unbounded":
        PairCache.interpolated = _unbounded_pairs
    torch.manual_seed(1234)
    model = vsdain.DAIN().eval()
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    blank = vs.core.std.BlankClip(format=vs.RGBS, width=WIDTH, height=HEIGHT, length=frames)

    def moving(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        planes = np.stack(
            [((x + 4 * n) % WIDTH) / WIDTH, y / HEIGHT, 0.5 + 0.5 * np.sin((x + y + 3 * n) / 9)]
        ).astype(np.float32)
        return planes_to_frame(planes, f)

    clip = blank.std.ModifyFrame(blank, moving)
    vs.core.num_threads = threads
    output = vsdain.Interpolate(clip, 2, model=model, sc=False)[: 2 * frames - 1]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if mode in ("leased", "unbounded"):
        requests = [output.get_frame_async(n) for n in range(1, 2 * frames - 1, 2)]
        for request in requests:
            np.asarray(request.result()[0]).sum()
    else:
        for frame in output.frames(close=True):
            np.asarray(frame[0]).sum()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mib": peak, "above_start_mib": peak - before, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="source frames (default 4)")
    parser.add_argument(
        "--distinct", action="store_true", help="one frame of every pair, all asked at once"
    )
    parser.add_argument("--child", nargs=2, metavar=("THREADS", "MODE"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        threads, mode = int(arguments.child[0]), arguments.child[1]
        print(json.dumps(child(threads, mode, arguments.frames)))
        return
    print("| num_threads | tensor work | MALLOC_ARENA_MAX | peak RSS | above start | time |")
    print("|---:|---|---|---:|---:|---:|")
    for threads, mode, arenas in DISTINCT_SETTINGS if arguments.distinct else SETTINGS:
        environment = dict(os.environ)
        environment.pop("MALLOC_ARENA_MAX", None)
        if arenas is not None:
            environment["MALLOC_ARENA_MAX"] = arenas
        command = [sys.executable, __file__, "--frames", str(arguments.frames)]
        done = subprocess.run(
            [*command, "--child", str(threads), mode],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {threads} | {mode} | {arenas or 'unset'} | {result['peak_mib']:.0f} MiB | "
            f"{result['above_start_mib']:.0f} MiB | {result['seconds']:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
