"""Where one frame pair's time goes: each sub-network and op of DAIN timed on its own.

    python bench/profile_stages.py [--size 448x256] [--repeats 3] [--multi 2]

Times, for one pair of random frames at the given size (padded as the filter pads it), the
calls the network makes: depth, context, PWC-Net features and decoding, the kernel
estimation, flow projection, adaptive warping and the synthesis network; and the three
stages the filter caches (per frame, per pair, per extra timestamp). Each call is wrapped with
a timer, so the same script measures any revision of the network that has these attributes;
pass ``--path`` to import ``vsdain`` from another checkout (for before/after comparisons).
Weights are random: only the times mean anything.
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="448x256", help="WIDTHxHEIGHT (default 448x256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is kept")
    parser.add_argument("--multi", type=int, default=2, help="timestamps per pair = multi - 1")
    parser.add_argument("--path", help="import vsdain from this checkout instead")
    args = parser.parse_args()
    if args.path:
        sys.path.insert(0, args.path)

    import torch

    import vsdain.model.dain as dain_module
    from vsdain.model import DAIN, Padding

    width, height = (int(value) for value in args.size.lower().split("x"))
    padding = Padding.for_size(height, width)
    torch.manual_seed(0)
    model = DAIN().eval()
    frames = [padding.pad(torch.rand(1, 3, height, width)) for _ in range(2)]
    timestamps = [index / args.multi for index in range(1, args.multi)]

    spent: dict[str, float] = collections.defaultdict(float)

    def timer(name, function):
        @functools.wraps(function)
        def wrapped(*positional, **keywords):
            start = time.perf_counter()
            try:
                return function(*positional, **keywords)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapped

    # Sub-networks: whichever entry point this revision calls.
    context_entry = "levels" if hasattr(model.ctxNet, "levels") else "forward"
    for name, owner, attribute in (
        ("depth network", model.depthNet, "forward"),
        ("context network", model.ctxNet, context_entry),
        ("PWC-Net features", model.flownets, "features"),
        ("PWC-Net decoding", model.flownets, "decode"),
        ("synthesis network", model.rectifyNet, "forward"),
    ):
        setattr(owner, attribute, timer(name, getattr(owner, attribute)))
    for name, attribute in (
        ("kernel estimation", "run_trunk"),
        ("kernel estimation", "run_head"),
        ("flow projection", "project_flow"),
        ("adaptive warping", "adaptive_warp"),
    ):
        setattr(dain_module, attribute, timer(name, getattr(dain_module, attribute)))

    def one_pair() -> dict[str, float]:
        spent.clear()
        stages = {}
        start = time.perf_counter()
        features = [model.frame_features(frame) for frame in frames]
        stages["per frame (x2)"] = time.perf_counter() - start
        start = time.perf_counter()
        pair = model.pair_features(*features)
        stages["per pair"] = time.perf_counter() - start
        start = time.perf_counter()
        for t in timestamps:
            model.synthesize(pair, t)
        stages[f"per timestamp (x{len(timestamps)})"] = time.perf_counter() - start
        return {**{f"stage: {key}": value for key, value in stages.items()}, **spent}

    with torch.inference_mode():
        one_pair()  # warm-up: allocator, oneDNN primitives
        runs = [one_pair() for _ in range(args.repeats)]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    total = sum(value for key, value in medians.items() if key.startswith("stage: "))
    print(
        f"# {args.size} (padded {frames[0].shape[3]}x{frames[0].shape[2]}), "
        f"{len(timestamps)} timestamp(s), {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, median of {args.repeats}"
    )
    print(f"# network code: {dain_module.__file__}")
    print("| part | seconds | share |\n|---|---:|---:|")
    for key, value in sorted(medians.items(), key=lambda item: not item[0].startswith("stage")):
        print(f"| {key} | {value:.3f} | {value / total:.0%} |")
    print(f"| total | {total:.3f} | 100% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
