"""The benchmark's results as markdown: what the command prints and what it saves."""

from __future__ import annotations

from .flops import NetworkFlops
from .precision import report_lines as precision_lines
from .runner import ConfigResult, Results, SizeResult
from .tiling import report_lines as tiling_lines

RANDOM_WEIGHTS_NOTE = (
    "Random weights: the timings are valid as timings (the arithmetic is identical to the "
    "released network's), but nothing here says anything about quality."
)
NO_GPU = "no GPU: kernel comparison skipped"


def render(results: Results, command: str) -> str:
    lines = [
        "# vsdain benchmark",
        "",
        f"{results.started:%Y-%m-%d %H:%M} UTC, `{command}`, {results.seconds:.0f} s in all.",
        "",
        *(f"- {line}" for line in results.machine.lines()),
        f"- Weights: {results.weights}",
        f"- Network precision: {str(results.dtype).removeprefix('torch.')}",
        *(f"- Clip at {size.width}x{size.height}: {size.source}" for size in results.sizes),
    ]
    if results.random_weights:
        lines += ["", f"**{RANDOM_WEIGHTS_NOTE}**"]
    if results.sizes:
        lines += ["", *_time_table(results), "", *_memory_table(results)]
        lines += ["", *_parts_section(results), "", *_kernel_section(results)]
    if results.tiling is not None:
        lines += ["", *tiling_lines(results.tiling)]
    timings = [(f"{s.width}x{s.height}", s.precision) for s in results.sizes if s.precision]
    if timings or results.precision_difference is not None:
        lines += ["", *precision_lines(timings, results.precision_difference)]
    return "\n".join(lines) + "\n"


def _size_header(sizes: list[SizeResult]) -> list[str]:
    names = [f"{size.width}x{size.height}" for size in sizes]
    return [
        "| | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _multis(results: Results) -> list[int]:
    return [config.multi for config in results.sizes[0].configs] if results.sizes else []


def _config(size: SizeResult, multi: int) -> ConfigResult:
    return next(config for config in size.configs if config.multi == multi)


def _time_table(results: Results) -> list[str]:
    lines = [
        "## Time per output frame",
        "",
        "*ours*: `vsdain.Interpolate`, frames pulled in order as vspipe pulls them (each "
        "frame's features computed once, each pair's once); *naive*: the same frames with the "
        "whole network run for every synthesised frame; *MVTools*: FlowFPS (default settings) "
        "on the same clip as YUV420P8. *by counted operations*: the naive/ours ratio the "
        "network's operation counts allow (below).",
        "",
        *_size_header(results.sizes),
    ]
    notes = []
    for multi in _multis(results):
        configs = [_config(size, multi) for size in results.sizes]
        lines.append(
            _row(f"ours multi={multi}", [_seconds(c.ours.seconds_per_frame) for c in configs])
        )
        lines.append(
            _row(f"naive multi={multi}", [_seconds(c.naive.seconds_per_frame) for c in configs])
        )
        lines.append(_row(f"naive/ours multi={multi}", [_ratio(c.speedup) for c in configs]))
        lines.append(
            _row(
                f"naive/ours by counted operations multi={multi}",
                [_ratio(operation_ratio(size.operations, multi)) for size in results.sizes],
            )
        )
        if any(c.mvtools is not None for c in configs):
            lines.append(
                _row(
                    f"MVTools multi={multi}",
                    [_seconds(c.mvtools.seconds_per_frame) if c.mvtools else "-" for c in configs],
                )
            )
            lines.append(
                _row(
                    f"ours/MVTools multi={multi}",
                    [
                        _ratio(c.ours.seconds_per_frame / c.mvtools.seconds_per_frame)
                        if c.mvtools
                        else "-"
                        for c in configs
                    ],
                )
            )
        for size, config in zip(results.sizes, configs, strict=True):
            if config.naive.note:
                notes.append(f"{size.width}x{size.height} multi={multi}: {config.naive.note}")
    frames = [
        f"{size.width}x{size.height}: {', '.join(str(c.ours.frames) for c in size.configs)}"
        for size in results.sizes
    ]
    lines += [
        "",
        "Output frames timed per configuration (multi "
        + ", ".join(str(m) for m in _multis(results))
        + "): "
        + "; ".join(frames)
        + ".",
    ]
    if notes:
        lines += [
            "Naive: each synthesised frame is one whole-network call of the same size, so "
            "only some are timed and their mean stands for the rest (" + "; ".join(notes) + ")."
        ]
    return lines


def operation_ratio(operations: NetworkFlops, multi: int) -> float:
    """naive/ours per output frame if time were proportional to counted operations: naive
    runs two frames, the pair and one timestamp per synthesised frame; ours runs one new
    frame, the pair and every timestamp once per pair."""
    synthesised = multi - 1
    naive = synthesised * (operations.naive_pair + operations.synthesize)
    ours = operations.frame + operations.pair + synthesised * operations.synthesize
    return naive / ours


def _memory_table(results: Results) -> list[str]:
    lines = [
        "## Peak memory",
        "",
        "Above what the process held before the measured frames: on a GPU, PyTorch's "
        "allocated bytes; on the CPU, the process's resident memory sampled every 2 ms.",
        "",
        *_size_header(results.sizes),
    ]
    for multi in _multis(results):
        configs = [_config(size, multi) for size in results.sizes]
        lines.append(_row(f"ours multi={multi}", [_bytes(c.ours.peak_bytes) for c in configs]))
        lines.append(_row(f"naive multi={multi}", [_bytes(c.naive.peak_bytes) for c in configs]))
        if any(c.mvtools is not None for c in configs):
            lines.append(
                _row(
                    f"MVTools multi={multi}",
                    [_bytes(c.mvtools.peak_bytes) if c.mvtools else "-" for c in configs],
                )
            )
    return lines


def _parts_section(results: Results) -> list[str]:
    peak = results.peak
    lines = [
        "## Where the time goes",
        "",
        f"Measured dense-arithmetic peak of this device: {_gflops(peak.matmul)} for a square "
        f"matrix product, {_gflops(peak.conv)} for a 256-channel 3x3 convolution; *of peak* "
        f"holds each part's counted operations per second against the better of the two. "
        f"Counted operations are convolutions and matrix products only "
        f"(`torch.utils.flop_counter`); the warping, projection and correlation ops and "
        f"element-wise work add time but no counted operations.",
    ]
    for size in results.sizes:
        parts, operations = size.parts, size.operations
        rows = [
            ("frame features (one frame)", parts.frame, operations.frame),
            ("pair features", parts.pair, operations.pair),
            ("per pair: two frames + pair", 2 * parts.frame + parts.pair, operations.naive_pair),
            ("per extra timestamp: synthesis", parts.synthesize, operations.synthesize),
        ]
        lines += [
            "",
            f"### {size.width}x{size.height} (network at {size.padded[1]}x{size.padded[0]})",
            "",
            "| part | time | GFLOP | GFLOP/s | of peak |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, seconds, count in rows:
            rate = count / seconds
            lines.append(
                f"| {label} | {_seconds(seconds)} | {count / 1e9:,.1f} | {rate / 1e9:,.0f} "
                f"| {rate / peak.best:.0%} |"
            )
    return lines


def _kernel_section(results: Results) -> list[str]:
    lines = ["## CUDA kernels against the PyTorch references", ""]
    measured = [size for size in results.sizes if size.kernels]
    if not measured:
        return [*lines, NO_GPU]
    for size in measured:
        lines += [
            f"### {size.width}x{size.height}",
            "",
            "| op | reference | kernel | reference/kernel |",
            "|---|---:|---:|---:|",
        ]
        for timing in size.kernels or []:
            lines.append(
                f"| {timing.operation} | {_seconds(timing.reference)} | {_seconds(timing.cuda)} "
                f"| {_ratio(timing.reference / timing.cuda)} |"
            )
        lines.append("")
    return lines


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"


def _bytes(value: int | None) -> str:
    if value is None:
        return "n/a"
    if value >= 2**30:
        return f"{value / 2**30:.2f} GiB"
    return f"{max(value, 0) / 2**20:.0f} MiB"


def _gflops(value: float) -> str:
    return f"{value / 1e9:,.0f} GFLOP/s"
