"""One pair's timestamps synthesised one by one against all at once as one batch.

At ``--multi`` (default 4) a pair has ``multi - 1`` synthesised timestamps. "one by one" is
:meth:`vsdain.model.DAIN.synthesize` per timestamp (what the filter does without batching),
"batched" is :meth:`vsdain.model.DAIN.synthesize_timestamps` (the synthesis network run once
on all of them). The two alternate within one process, round after round, so that a machine
whose load changes affects both alike; the table gives the median of the rounds, the ratio
of the medians, the peak memory of each (above the pair's features) and whether the frames
are equal. A third pair of rows times the synthesis network alone at batch 1 against one
batch, the only part that batching changes. "per output frame" adds the per-frame and per-pair
work, measured once, as sequential playback pays it: one new frame's features and one pair's
features per ``multi`` output frames. Random weights: time and memory only.

    .venv/bin/python bench/timestamp_batch.py                      # 448x256, multi=4, 3 rounds
    .venv/bin/python bench/timestamp_batch.py --rounds 1 --size 128x64
"""

from __future__ import annotations

import argparse
import statistics
import time
from fractions import Fraction

import torch

from vsdain.memory import PeakMemory
from vsdain.model import DAIN, Padding
from vsdain.model.synthesis import SYNTHESIS_INPUT_CHANNELS


def _timed(work, device: torch.device) -> tuple[float, int | None, object]:
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        result = work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    return seconds, peak.bytes, result


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=_size, default=(448, 256), help="WIDTHxHEIGHT")
    parser.add_argument("--multi", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    width, height = args.size
    timestamps = [float(Fraction(k, args.multi)) for k in range(1, args.multi)]

    torch.manual_seed(1234)
    model = DAIN().eval().to(device)
    generator = torch.Generator().manual_seed(0)
    first = torch.rand(1, 3, height, width, generator=generator).to(device)
    second = torch.roll(first, shifts=(2, 5), dims=(-2, -1))
    padding = Padding.for_size(height, width)
    net = model.rectifyNet
    with torch.inference_mode():
        second_features = model.frame_features(padding.pad(second))  # also the warm-up
        frame_seconds, _, first_features = _timed(
            lambda: model.frame_features(padding.pad(first)), device
        )
        model.pair_features(first_features, second_features)
        pair_seconds, _, pair = _timed(
            lambda: model.pair_features(first_features, second_features), device
        )
        inputs = torch.rand(
            len(timestamps), SYNTHESIS_INPUT_CHANNELS, *pair.flow_forward.shape[-2:],
            generator=generator,
        ).to(device)  # fmt: skip

        def one_by_one():
            return [model.synthesize(pair, t) for t in timestamps]

        def batched():
            return model.synthesize_timestamps(pair, timestamps)

        def network_one_by_one():
            return [net(inputs[k : k + 1]) for k in range(len(timestamps))]

        def network_batched():
            return net(inputs)

        # Warm-up: first-call allocations and oneDNN's primitives for both batch sizes.
        for work in (one_by_one, batched, network_one_by_one, network_batched):
            work()
        one_rows, batch_rows, net_one, net_batch = [], [], [], []
        equal = True
        for round_index in range(args.rounds):
            # Alternate which goes first, so that a load that grows or shrinks over a round
            # favours neither.
            order = [False, True] if round_index % 2 == 0 else [True, False]
            for is_batch in order:
                seconds, peak, frames = _timed(batched if is_batch else one_by_one, device)
                (batch_rows if is_batch else one_rows).append((seconds, peak))
                if is_batch:
                    batch_frames = frames
                else:
                    one_frames = frames
                del frames
            equal &= all(
                torch.equal(a.output, b.output)
                for a, b in zip(one_frames, batch_frames, strict=True)
            )
            del one_frames, batch_frames
            for is_batch in order:
                seconds = _timed(network_batched if is_batch else network_one_by_one, device)[0]
                (net_batch if is_batch else net_one).append(seconds)

    count = len(timestamps)
    shared = frame_seconds + pair_seconds  # per pair in sequential playback

    def row(name: str, seconds: list[float], peaks: list[int | None]) -> str:
        synthesis = statistics.median(seconds)
        peak = max((p for p in peaks if p is not None), default=None)
        per_frame = (shared + synthesis) / args.multi
        peak_text = "n/a" if peak is None else f"{peak / 2**20:.0f} MiB"
        return (
            f"| {name} | {synthesis / count:.2f} s | {per_frame:.2f} s | {peak_text} | "
            f"{', '.join(f'{s:.2f}' for s in seconds)} |"
        )

    one_time = statistics.median(s for s, _ in one_rows)
    batch_time = statistics.median(s for s, _ in batch_rows)
    print(
        f"{width}x{height}, multi={args.multi} ({count} timestamps per pair), {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds; "
        f"frame features {frame_seconds:.2f} s, pair features {pair_seconds:.2f} s"
    )
    print()
    print("| | per timestamp | per output frame | peak memory | rounds (s, all timestamps) |")
    print("|---|---:|---:|---:|---|")
    print(row("one by one", [s for s, _ in one_rows], [p for _, p in one_rows]))
    print(row("batched", [s for s, _ in batch_rows], [p for _, p in batch_rows]))
    print(
        f"| synthesis network only, batch 1 x {count} | "
        f"{statistics.median(net_one) / count:.2f} s | | | "
        f"{', '.join(f'{s:.2f}' for s in net_one)} |"
    )
    print(
        f"| synthesis network only, one batch of {count} | "
        f"{statistics.median(net_batch) / count:.2f} s | | | "
        f"{', '.join(f'{s:.2f}' for s in net_batch)} |"
    )
    print()
    per_frame_ratio = (shared + batch_time) / (shared + one_time)
    print(
        f"batched / one by one: {batch_time / one_time:.3f} per timestamp, "
        f"{per_frame_ratio:.3f} per output frame, "
        f"{statistics.median(net_batch) / statistics.median(net_one):.3f} for the network "
        f"alone; frames equal: {equal}"
    )


if __name__ == "__main__":
    main()
