"""The steps of the GPU check (:mod:`.gpu_check`), each run in a process of its own.

Every step returns a :class:`StepResult`: a status (``ok``, ``skipped`` or ``failed``), one
summary line, a markdown section for the report and the numbers for ``results.json``. With
``dry_run`` a step does the same work at a tiny size on the CPU and reports what only CUDA
can do as skipped, so that the check is exercised where no GPU is at hand. Only the ``busy``
step needs VapourSynth (it runs the filter); the others run the network directly.

Random weights throughout: the check measures time, memory and agreement with the
references, never quality.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .gpu_check import StepOptions

# What the check measures, on a GPU and in the dry run.
GPU_SIZES = [(1280, 720), (1920, 1080)]
# The dry run's network-level steps feed the network 64x64 frames as they are (the smallest
# input it takes; the filter would pad them to 128x128).
DRY_SIZES = [(64, 64)]
GPU_TILE = 512  # a tile a GPU of a few GiB would get at 1080p in float32
DRY_TILE = 32  # MIN_TILE: four tiles of the 128x128 padded frame
BUSY_SIZE = {False: (1920, 1080), True: (64, 48)}
BUSY_MULTI = 2
# Two pairs on a GPU: the tile choice and cuDNN's algorithm search happen there. The dry run
# skips the source frame and measures one synthesised frame, untiled (no tile probe).
BUSY_WARM_UP_FRAMES = {False: 4, True: 1}
BUSY_FRAMES = {False: 16, True: 1}  # output frames measured after the warm-up
BUSY_TILE = {False: None, True: 0}
BATCH_SIZE = {False: (1280, 720), True: (64, 64)}
BATCH_MULTI = {False: 4, True: 3}
# Timed repeats (the best or the median is kept); the dry run times each thing once, without
# a warm-up.
REPEATS = {False: 3, True: 1}
PRECISIONS = [("float32", torch.float32), ("float16", torch.float16)]
NVML_INTERVAL_S = 0.05
# Reported for the reference implementation (its README and issues): about 4 s per frame at
# 1280x720 on a Titan RTX, with the GPU busy 20% of the time or less.
REFERENCE_SECONDS_720P = 4.0


@dataclass
class StepResult:
    status: str  # "ok", "skipped" or "failed"
    summary: str
    report: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "status": self.status,
            "summary": self.summary,
            "report": self.report,
            "data": self.data,
        }


def _device(dry_run: bool) -> torch.device:
    return torch.device("cpu" if dry_run else "cuda")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(work: Callable[[], object], device: torch.device) -> tuple[float, object]:
    _synchronize(device)
    start = time.perf_counter()
    result = work()
    _synchronize(device)
    return time.perf_counter() - start, result


def _network(device: torch.device, dtype: torch.dtype):
    from ..model import DAIN

    torch.manual_seed(1234)
    return DAIN().eval().to(device=device, dtype=dtype)


def _frames(width: int, height: int, device: torch.device, dtype: torch.dtype):
    """Two (1, 3, H, W) frames of a pattern moving a few pixels between them."""
    generator = torch.Generator().manual_seed(0)
    first = torch.rand(1, 3, height, width, generator=generator)
    first = torch.nn.functional.avg_pool2d(first, 5, stride=1, padding=2)  # some structure
    second = torch.roll(first, shifts=(2, 5), dims=(-2, -1))
    return first.to(device=device, dtype=dtype), second.to(device=device, dtype=dtype)


def _network_frames(
    width: int, height: int, device: torch.device, dtype: torch.dtype, dry_run: bool
) -> list[torch.Tensor]:
    """The two frames as the network takes them: padded as the filter pads them, or in the
    dry run as they are (64x64 needs no padding)."""
    from ..model import Padding

    frames = _frames(width, height, device, dtype)
    if dry_run:
        return list(frames)
    padding = Padding.for_size(height, width)
    return [padding.pad(frame) for frame in frames]


def _whole_timestamp(model, images: list[torch.Tensor], plan=None) -> torch.Tensor:
    """Both frames' features, their pair's and one timestamp (t = 0.5), untiled or by ``plan``."""
    first, second = (model.frame_features(image) for image in images)
    pair = model.pair_features(first, second)
    if plan is None:
        return model.synthesize(pair, 0.5).output
    return plan.synthesize(model, pair, 0.5).output


def _label(width: int, height: int) -> str:
    return f"{width}x{height}"


# --- environment ---------------------------------------------------------------------------------


def environment(options: StepOptions) -> StepResult:
    dry_run, vapoursynth = options.dry_run, options.vapoursynth
    import platform

    from ..ops import cupy_backend

    data: dict = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        data["gpu"] = properties.name
        data["gpu_memory_gib"] = round(properties.total_memory / 2**30, 1)
        data["capability"] = f"{properties.major}.{properties.minor}"
    unavailable = cupy_backend.cupy_unavailable_reason()
    data["cupy"] = cupy_backend.cupy_description() if unavailable is None else None
    data["cupy_problem"] = unavailable
    data["vapoursynth"] = _vapoursynth_version() if vapoursynth else None
    gpu = data.get("gpu", "no CUDA GPU")
    cupy = data["cupy"] or f"no CuPy ({unavailable})"
    vs_text = f"VapourSynth {data['vapoursynth']}" if data["vapoursynth"] else "no VapourSynth"
    summary = (
        f"{gpu}; torch {data['torch']} (CUDA {data['torch_cuda']}); {cupy}; {vs_text}; "
        f"Python {data['python']}"
    )
    status = "ok"
    if not dry_run and not data["cuda_available"]:
        status, summary = "failed", f"PyTorch sees no CUDA GPU ({summary}); run with --dry-run"
    report = ["## Environment", "", *(f"- {key}: {value}" for key, value in data.items()), ""]
    return StepResult(status, summary, report, data)


def _vapoursynth_version() -> str | None:
    try:
        import vapoursynth as vs
    except ImportError:
        return None
    return str(vs.core.version_number())


# --- the CUDA-marked tests -----------------------------------------------------------------------


def cuda_tests(options: StepOptions) -> StepResult:
    """``pytest -m cuda`` over the test suite given (``--tests``, a checkout's ``tests``
    folder: bench/gpu_check.sh passes its own), its output in ``tests.txt``. Without
    VapourSynth the modules that import it are not collected (reported, not failed). The dry
    run collects one module only: there every CUDA test is skipped anyway."""
    dry_run, out, tests = options.dry_run, options.out, options.tests
    if tests is None:
        return StepResult("skipped", "no test suite given (--tests DIR)")
    if not (tests / "conftest.py").is_file():
        return StepResult("failed", f"--tests {tests}: no test suite there (no conftest.py)")
    targets = [str(tests / "test_pipeline.py")] if dry_run else [str(tests)]
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [
            sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
            "--continue-on-collection-errors", f"--junitxml={junit}", "-rfEs", *targets,
        ]  # fmt: skip
        with open(out / "tests.txt", "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            returncode = subprocess.call(
                command, cwd=tests.parent, stdout=log, stderr=subprocess.STDOUT
            )
        counts = _junit_counts(junit) if junit.exists() else None
    if counts is None:
        return StepResult("failed", f"pytest ended with {returncode} and wrote no report")
    needs_vs = counts.pop("needs_vapoursynth")
    text = ", ".join(f"{value} {key}" for key, value in counts.items() if value)
    if needs_vs:
        text += f"; {needs_vs} modules not collected (they need VapourSynth)"
    failed = counts["failed"] + counts["errors"]
    if failed:
        status = "failed"
    elif counts["passed"] == 0:
        status = "skipped"
        text = f"no CUDA test ran ({text or 'none collected'})"
    else:
        status = "ok"
    return StepResult(status, text, ["## CUDA tests", "", f"- {text} (tests.txt)", ""], counts)


def _junit_counts(path: Path) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "needs_vapoursynth": 0}
    for case in ElementTree.parse(path).iter("testcase"):
        error = case.find("error")
        if error is not None:
            text = (error.get("message") or "") + (error.text or "")
            vapoursynth_missing = "No module named 'vapoursynth'" in text
            counts["needs_vapoursynth" if vapoursynth_missing else "errors"] += 1
        elif case.find("failure") is not None:
            counts["failed"] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


# --- kernels against references ------------------------------------------------------------------


def kernels(options: StepOptions) -> StepResult:
    """Each op, and one whole timestamp, with its CUDA kernel and its reference on the same
    inputs at the 720p network size: largest absolute difference and time per call. The dry
    run builds the same inputs at the tiny size and times the references only."""
    dry_run = options.dry_run
    from .. import ops
    from ..model.context import CONTEXT_CHANNELS
    from ..model.flow import MAX_DISPLACEMENT, PYRAMID_WIDTHS
    from ..model.kernel_estimation import KERNEL_TAPS

    device = _device(dry_run)
    width, height = (DRY_SIZES if dry_run else GPU_SIZES)[0]
    images = _network_frames(width, height, device, torch.float32, dry_run)
    padded_height, padded_width = images[0].shape[-2:]
    generator = torch.Generator().manual_seed(0)

    def random(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * scale + shift).to(device)

    level = PYRAMID_WIDTHS[1]  # PWC-Net's finest correlation: level-2 features at 1/4 size
    features = [random(1, level, padded_height // 4, padded_width // 4) for _ in range(2)]
    flow = random(1, 2, padded_height, padded_width, scale=16.0, shift=-8.0)
    weight = random(1, 1, padded_height, padded_width, shift=0.1)
    context = random(1, CONTEXT_CHANNELS, padded_height, padded_width)
    kernel = random(1, KERNEL_TAPS, padded_height, padded_width)
    model = _network(device, torch.float32)
    networks = {"reference": model.use_ops("reference")}
    if not dry_run:
        networks["cuda"] = copy.deepcopy(model).use_ops("cuda")
    cases: list[tuple[str, Callable[[str], torch.Tensor]]] = [
        (
            f"correlation ({level} ch, 1/4 size)",
            lambda backend: ops.correlation(*features, MAX_DISPLACEMENT, backend=backend),
        ),
        (
            "project_flow (fill holes)",
            lambda backend: ops.project_flow(flow, weight, fill_holes=True, backend=backend),
        ),
        (
            f"adaptive_warp ({CONTEXT_CHANNELS} ch)",
            lambda backend: ops.adaptive_warp(context, flow, kernel, backend=backend),
        ),
        (
            "whole pair, one timestamp",
            lambda backend: _whole_timestamp(networks[backend], images),
        ),
    ]
    rows = []
    with torch.inference_mode():
        for name, run in cases:
            reference_seconds, reference = _best(
                lambda run=run: run("reference"), device, REPEATS[dry_run]
            )
            row = {"op": name, "reference_s": reference_seconds}
            if not dry_run:
                cuda_seconds, result = _best(lambda run=run: run("cuda"), device, REPEATS[dry_run])
                row["cuda_s"] = cuda_seconds
                row["max_difference"] = (result.float() - reference.float()).abs().max().item()
            rows.append(row)
    where = f"{_label(padded_width, padded_height)} (network size of {_label(width, height)})"
    report = [f"## Kernels against the references, float32, {where}", ""]
    report += ["| op | reference | CUDA kernel | speed-up | max abs difference |"]
    report += ["|---|---:|---:|---:|---:|"]
    for row in rows:
        if dry_run:
            report.append(f"| {row['op']} | {_ms(row['reference_s'])} | skipped | | |")
        else:
            report.append(
                f"| {row['op']} | {_ms(row['reference_s'])} | {_ms(row['cuda_s'])} | "
                f"{row['reference_s'] / row['cuda_s']:.1f}x | {row['max_difference']:.2e} |"
            )
    report.append("")
    data = {"size": [width, height], "rows": rows}
    if dry_run:
        return StepResult(
            "skipped", "needs CUDA (references timed at the tiny size only)", report, data
        )
    worst = max(row["max_difference"] for row in rows[:-1])
    whole = rows[-1]
    summary = (
        f"ops max |diff| {worst:.1e}; whole timestamp {_ms(whole['cuda_s'])} vs reference "
        f"{_ms(whole['reference_s'])}, max |diff| {whole['max_difference']:.1e}"
    )
    return StepResult("ok", summary, report, data)


def _best(
    work: Callable[[], torch.Tensor], device: torch.device, repeats: int
) -> tuple[float, torch.Tensor]:
    """The best of ``repeats`` timed calls, after one untimed (compilation, allocator growth)
    when there is more than one."""
    if repeats > 1:
        work()
    times = []
    for _ in range(repeats):
        seconds, result = _timed(work, device)
        times.append(seconds)
    return min(times), result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --- time and memory per output frame ------------------------------------------------------------


def frames(options: StepOptions) -> StepResult:
    """Per size, precision and tiling: one frame's features, one pair's, one timestamp, and
    the peak memory of a whole pair (two frames' features, the pair, one timestamp); the time
    per output frame at multi=2 is what sequential playback pays per pair (one new frame's
    features, the pair, one timestamp) over its two output frames."""
    dry_run = options.dry_run
    from ..model.tiling import TilePlan

    device = _device(dry_run)
    tile = DRY_TILE if dry_run else GPU_TILE
    rows = []
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the filter does once a clip's tiles are set
    for width, height in DRY_SIZES if dry_run else GPU_SIZES:
        for precision, dtype in PRECISIONS:
            if dtype == torch.float16 and device.type != "cuda":
                rows.append(_skipped_row(width, height, precision, "needs CUDA"))
                continue
            model = _network(device, dtype)
            images = _network_frames(width, height, device, dtype, dry_run)
            for tiling, plan_tile in (("untiled", 0), (f"{tile} px tiles", tile)):
                plan = TilePlan(plan_tile)
                try:
                    row = _frame_row(model, images, plan, REPEATS[dry_run], not dry_run)
                    rows.append({**row, "size": _label(width, height), "precision": precision})
                except torch.OutOfMemoryError:
                    rows.append(_skipped_row(width, height, precision, "out of memory"))
                rows[-1]["tiling"] = tiling
                _release(device)
            del model, images
            _release(device)
    report = [
        f"## Time and peak memory per output frame, multi=2 ({device.type})",
        "",
        "| size | precision | tiling | per output frame | frame features | pair | timestamp | "
        "peak memory |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "skipped" in row:
            report.append(
                f"| {row['size']} | {row['precision']} | {row.get('tiling', '')} | "
                f"skipped: {row['skipped']} | | | | |"
            )
            continue
        report.append(
            f"| {row['size']} | {row['precision']} | {row['tiling']} | "
            f"{_ms(row['per_output_frame_s'])} | {_ms(row['frame_s'])} | {_ms(row['pair_s'])} | "
            f"{_ms(row['timestamp_s'])} | {row['peak_bytes'] / 2**30:.2f} GiB |"
        )
    report += [
        "",
        f"The reference DAIN is reported at about {REFERENCE_SECONDS_720P:.0f} s per frame at "
        "1280x720 on a Titan RTX.",
        "",
    ]
    measured = [row for row in rows if "skipped" not in row]
    if not measured:
        return StepResult("failed", "nothing could be measured", report, {"rows": rows})
    by_key = {(row["size"], row["precision"], row["tiling"]): row for row in measured}
    notes = []
    for key in [("1280x720", "float16", "untiled"), ("1920x1080", "float16", "untiled")]:
        if key in by_key:
            notes.append(f"{key[0]} float16 {_ms(by_key[key]['per_output_frame_s'])}/frame")
    if not notes:
        first = measured[0]
        notes.append(
            f"{first['size']} {first['precision']} {first['tiling']} "
            f"{_ms(first['per_output_frame_s'])}/frame"
        )
    skipped = len(rows) - len(measured)
    summary = "; ".join(notes) + (f" ({skipped} rows skipped)" if skipped else "")
    return StepResult("ok", summary, report, {"rows": rows})


def _skipped_row(width: int, height: int, precision: str, why: str) -> dict:
    return {"size": _label(width, height), "precision": precision, "skipped": why}


def _frame_row(model, images, plan, repeats: int, warm_up: bool) -> dict:
    """Times (best of ``repeats``) and peak memory (the largest of the repeats') of one
    configuration."""
    from ..memory import PeakMemory

    device = images[0].device
    parts = {"frame_s": [], "pair_s": [], "timestamp_s": []}
    peaks = []
    with torch.inference_mode():
        if warm_up:  # the tile choice, cuDNN's search, allocator growth
            _whole_timestamp(model, images, plan)
            _release(device)
        for _ in range(repeats):
            with PeakMemory(device) as peak:
                seconds, first = _timed(functools.partial(model.frame_features, images[0]), device)
                parts["frame_s"].append(seconds)
                second = model.frame_features(images[1])
                seconds, pair = _timed(
                    functools.partial(model.pair_features, first, second), device
                )
                parts["pair_s"].append(seconds)
                seconds, _ = _timed(functools.partial(plan.synthesize, model, pair, 0.5), device)
                parts["timestamp_s"].append(seconds)
                first = second = pair = None  # freed before the next round allocates its own
            peaks.append(peak.bytes or 0)
            _release(device)
    row = {key: min(values) for key, values in parts.items()}
    row["per_output_frame_s"] = sum(row.values()) / 2
    return {**row, "peak_bytes": max(peaks), "tile": plan.current}


def _release(device: torch.device) -> None:
    from ..memory import release_unused

    release_unused(device)


# --- one pair's timestamps as one batch ----------------------------------------------------------


def batch(options: StepOptions) -> StepResult:
    """At multi=4, a pair's three timestamps one by one against one batch, alternating round
    by round; the ratio of the medians and the largest difference between the two."""
    dry_run = options.dry_run
    device = _device(dry_run)
    dtype = torch.float32 if dry_run else torch.float16
    width, height = BATCH_SIZE[dry_run]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = _network(device, dtype)
    multi = BATCH_MULTI[dry_run]
    timestamps = [k / multi for k in range(1, multi)]
    with torch.inference_mode():
        first, second = (
            model.frame_features(image)
            for image in _network_frames(width, height, device, dtype, dry_run)
        )
        pair = model.pair_features(first, second)

        def one_by_one():
            return [model.synthesize(pair, t).output for t in timestamps]

        def batched():
            return [s.output for s in model.synthesize_timestamps(pair, timestamps)]

        if not dry_run:
            one_by_one(), batched()  # warm-up
        times: dict[str, list[float]] = {"one by one": [], "batched": []}
        for round_index in range(REPEATS[dry_run]):
            order = [one_by_one, batched] if round_index % 2 == 0 else [batched, one_by_one]
            for work in order:
                seconds, outputs = _timed(work, device)
                name = "batched" if work is batched else "one by one"
                times[name].append(seconds)
                if name == "batched":
                    batch_outputs = outputs
                else:
                    single_outputs = outputs
        difference = max(
            (a.float() - b.float()).abs().max().item()
            for a, b in zip(single_outputs, batch_outputs, strict=True)
        )
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["batched"] / medians["one by one"]
    precision = "float32" if dtype == torch.float32 else "float16"
    report = [
        f"## {len(timestamps)} timestamps of one pair, one by one and as one batch "
        f"({_label(width, height)}, {precision}, {device.type})",
        "",
        "| | per timestamp | rounds |",
        "|---|---:|---|",
        *(
            f"| {name} | {_ms(medians[name] / len(timestamps))} | "
            f"{', '.join(_ms(s) for s in values)} |"
            for name, values in times.items()
        ),
        "",
        f"batched / one by one: {ratio:.3f}; largest difference {difference:.2e}",
        "",
    ]
    data = {"times": times, "ratio": ratio, "max_difference": difference, "size": [width, height]}
    summary = f"batched/one by one {ratio:.2f} at {_label(width, height)} {precision}"
    summary += f", max |diff| {difference:.1e}"
    return StepResult("ok", summary, report, data)


# --- how busy the GPU is while the filter runs ---------------------------------------------------


def busy(options: StepOptions) -> StepResult:
    """The filter at 1080p, multi=2, float16 (RGBH in, the default precision for it), output
    frames pulled as vspipe pulls them: the fraction of the wall time during which at least one
    kernel ran (the union of the kernels' intervals from PyTorch's profiler, which sees CuPy's
    kernels too), and NVML's utilisation sampled alongside where it can be read."""
    dry_run, vapoursynth = options.dry_run, options.vapoursynth
    if not vapoursynth:
        return StepResult(
            "skipped",
            "VapourSynth is not installed: this filter-level step needs it (bench/gpu_check.sh "
            "says how to carry its wheel)",
        )
    import vapoursynth as vs

    from ..filter import Interpolate
    from .clips import synthetic

    device = _device(dry_run)
    width, height = BUSY_SIZE[dry_run]
    dtype = torch.float32 if dry_run else torch.float16
    model = _network(device, dtype)
    count = BUSY_FRAMES[dry_run]
    warm_up = BUSY_WARM_UP_FRAMES[dry_run]
    length = (warm_up + count) // BUSY_MULTI + 2
    source = synthetic(width, height, length)
    if dtype == torch.float16:
        source = source.resize.Point(format=vs.RGBH)
    output = Interpolate(source, BUSY_MULTI, sc=False, model=model, tile=BUSY_TILE[dry_run])
    if warm_up:
        for _ in output[:warm_up].frames():
            pass
        _synchronize(device)
    window = output[warm_up : warm_up + count]

    def pull():
        for _ in window.frames(prefetch=vs.core.num_threads):
            pass
        _synchronize(device)

    precision = "float32" if dtype == torch.float32 else "float16"
    where = f"{_label(width, height)}, multi={BUSY_MULTI}, {precision}, {count} output frames"
    if device.type != "cuda":
        seconds, _ = _timed(pull, device)
        report = [f"## GPU busy while the filter runs ({where})", "", "- skipped: needs CUDA", ""]
        data = {"seconds_per_frame": seconds / count}
        summary = f"needs CUDA (the filter ran: {_ms(seconds / count)} per output frame on the CPU)"
        return StepResult("skipped", summary, report, data)

    sampler = _UtilisationSampler()
    with tempfile.TemporaryDirectory() as scratch:
        trace = Path(scratch) / "trace.json"
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])
        with profiler, sampler:
            seconds, _ = _timed(pull, device)
        profiler.export_chrome_trace(str(trace))
        kernel_s, copy_s = _trace_busy(trace)
    fraction = kernel_s / seconds
    report = [
        f"## GPU busy while the filter runs ({where})",
        "",
        f"- wall time {seconds:.2f} s, {_ms(seconds / count)} per output frame",
        f"- kernels running {kernel_s:.2f} s: busy {fraction:.0%} of the wall time",
        f"- host <-> device copies {copy_s:.2f} s (they overlap the kernels)",
        f"- NVML utilisation, mean of samples every {NVML_INTERVAL_S * 1000:.0f} ms: "
        + ("not readable here" if sampler.mean is None else f"{sampler.mean:.0f}%"),
        "",
    ]
    data = {
        "wall_s": seconds,
        "seconds_per_frame": seconds / count,
        "kernel_s": kernel_s,
        "copy_s": copy_s,
        "busy_fraction": fraction,
        "nvml_utilisation": sampler.mean,
    }
    summary = f"GPU busy {fraction:.0%} ({where}); {_ms(seconds / count)} per output frame"
    return StepResult("ok", summary, report, data)


def _trace_busy(trace: Path) -> tuple[float, float]:
    """Seconds during which at least one kernel ran, and seconds of copies, from a Chrome
    trace of PyTorch's profiler (events of category "kernel" and "gpu_memcpy", in µs)."""
    events = json.loads(trace.read_text()).get("traceEvents", [])

    def union(category: str) -> float:
        spans = sorted(
            (event["ts"], event["ts"] + event.get("dur", 0))
            for event in events
            if event.get("cat") == category and "ts" in event
        )
        total, end = 0.0, float("-inf")
        for start, stop in spans:
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total / 1e6

    return union("kernel"), union("gpu_memcpy")


class _UtilisationSampler:
    """NVML's GPU utilisation (percent of time a kernel ran, per sample period) sampled on a
    thread; mean stays None where it cannot be read (no NVML bindings)."""

    def __init__(self) -> None:
        self.mean: float | None = None
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _UtilisationSampler:
        try:
            torch.cuda.utilization()
        except Exception:
            return self
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(NVML_INTERVAL_S):
            self._samples.append(float(torch.cuda.utilization()))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if self._samples:
                self.mean = statistics.fmean(self._samples)


STEPS: dict[str, Callable[[StepOptions], StepResult]] = {
    "environment": environment,
    "cuda-tests": cuda_tests,
    "kernels": kernels,
    "frames": frames,
    "batch": batch,
    "busy": busy,
}


def run_step(name: str, options: StepOptions, result: Path) -> int:
    """The entry of a step's process: runs it and writes its result as JSON."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    outcome = STEPS[name](options)
    result.write_text(json.dumps(outcome.to_json(), indent=1, default=str))
    return 0
