"""The GPU check: the CUDA tests, the kernels against their references, time and memory per
output frame, one pair's timestamps as a batch, and how busy the GPU is while the filter runs,
in a few minutes on one GPU, on a machine that has only PyTorch and CuPy.

    python3 -m vsdain.benchmark.gpu_check OUT [--dry-run] [--no-vapoursynth] [--tests DIR]

(``bench/gpu_check.sh`` sets up the path and VapourSynth first.) Each step runs in a process
of its own under a time limit, so that a hang or a crash costs that step, not the run; the
whole run stops starting steps after :data:`TOTAL_LIMIT_S`. Everything goes into the folder
OUT, in :data:`OUTPUT_FILES` (five files): the summary printed at the end, the report with every
table, the numbers as JSON, the CUDA tests' output and the steps' own log. ``--dry-run`` runs
the same steps on the CPU at a tiny size and reports what needs CUDA as skipped; the test
suite runs it so that the check keeps working while no GPU is at hand.

Exit status: 0 when no step failed or timed out, 1 otherwise, 2 when there is no GPU to
check (without ``--dry-run``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# (step, time limit in seconds). The limits add up to less than TOTAL_LIMIT_S; each is several
# times what the step is expected to take on one current GPU.
STEPS = [
    ("environment", 40),
    ("cuda-tests", 120),
    ("kernels", 60),
    ("frames", 120),
    ("batch", 40),
    ("busy", 90),
]
TOTAL_LIMIT_S = 470  # the run must end within 8 minutes, summary included
SUMMARY = "summary.txt"
REPORT = "report.md"
RESULTS = "results.json"
TESTS = "tests.txt"
LOG = "steps.log"
OUTPUT_FILES = (SUMMARY, REPORT, RESULTS, TESTS, LOG)


@dataclass(frozen=True)
class StepOptions:
    """What every step is told: a dry run or not, whether VapourSynth may be used, the results
    folder, and the test suite to run the CUDA-marked tests of (None: that step is skipped)."""

    dry_run: bool
    vapoursynth: bool
    out: Path
    tests: Path | None = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m vsdain.benchmark.gpu_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="folder for the results (created if need be)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="the same steps on the CPU at a tiny size; what needs CUDA is reported as skipped",
    )
    parser.add_argument(
        "--no-vapoursynth",
        action="store_true",
        help="act as if VapourSynth were not installed (its filter-level step is skipped)",
    )
    parser.add_argument(
        "--tests",
        type=Path,
        help="a checkout's tests folder, for the CUDA-marked tests (without it that step is "
        "skipped); bench/gpu_check.sh passes its own",
    )
    parser.add_argument("--step", choices=[name for name, _ in STEPS], help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    vapoursynth = not args.no_vapoursynth and importlib.util.find_spec("vapoursynth") is not None
    tests = None if args.tests is None else args.tests.resolve()
    options = StepOptions(args.dry_run, vapoursynth, args.out, tests)
    if args.step is not None:  # one step, in its own process (see run)
        from .gpu_steps import run_step

        return run_step(args.step, options, args.result)
    return run(options)


def run(options: StepOptions) -> int:
    out, dry_run = options.out, options.dry_run
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    started = time.monotonic()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch, open(out / LOG, "w") as log:
        for name, limit in STEPS:
            left = TOTAL_LIMIT_S - (time.monotonic() - started)
            if left < 5:
                results[name] = _outcome("timed out", "not started: the run's time was up")
                continue
            result = Path(scratch) / f"{name}.json"
            command = _step_command(name, options, result)
            results[name] = run_step_process(name, command, min(limit, int(left)), result, log)
            _progress(name, results[name])
            if name == "environment" and results[name]["status"] != "ok":
                break  # nothing else can run (no GPU, or PyTorch does not import)
    total = time.monotonic() - started
    summary = _summary(results, total, dry_run)
    (out / SUMMARY).write_text(summary)
    (out / REPORT).write_text(_report(results, summary))
    (out / RESULTS).write_text(
        json.dumps(
            {"dry_run": dry_run, "total_s": total, "written": _now(), "steps": results},
            indent=1,
            default=str,
        )
    )
    print(summary, end="")
    statuses = {result["status"] for result in results.values()}
    if results["environment"]["status"] != "ok" and not dry_run:
        return 2
    return 1 if statuses & {"failed", "timed out"} else 0


def _step_command(name: str, options: StepOptions, result: Path) -> list[str]:
    command = [
        sys.executable, "-m", "vsdain.benchmark.gpu_check", str(options.out),
        "--step", name, "--result", str(result),
    ]  # fmt: skip
    if options.dry_run:
        command.append("--dry-run")
    if not options.vapoursynth:
        command.append("--no-vapoursynth")
    if options.tests is not None:
        command += ["--tests", str(options.tests)]
    return command


def run_step_process(name: str, command: list[str], limit: int, result: Path, log) -> dict:
    """Runs one step's ``command``, which writes its outcome as JSON to ``result``, for at
    most ``limit`` seconds; its output goes to ``log``. A step that overruns is killed with
    every process it started."""
    log.write(f"=== {name} (limit {limit} s): {' '.join(command)}\n")
    log.flush()
    start = time.monotonic()
    # A session of its own, so that a step that hangs is killed with everything it started.
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_step_env()
    )
    try:
        returncode = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        outcome = _outcome("timed out", f"stopped after {limit} s")
    else:
        if returncode == 0 and result.exists():
            outcome = json.loads(result.read_text())
        else:
            outcome = _outcome("failed", f"the step's process ended with {returncode}; see {LOG}")
    outcome["seconds"] = time.monotonic() - start
    log.write(f"=== {name}: {outcome['status']} in {outcome['seconds']:.1f} s\n")
    log.flush()
    return outcome


def _step_env() -> dict[str, str]:
    # Each step imports the package as this process did (a checkout on PYTHONPATH, a carried
    # wheel's folder): its import path is this process's.
    path = [entry for entry in sys.path if entry]
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(path))


def _outcome(status: str, summary: str) -> dict:
    return {"status": status, "summary": summary, "report": [], "data": {}}


def _progress(name: str, result: dict) -> None:
    print(
        f"gpu_check: {name}: {result['status']} ({result['seconds']:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary(results: dict[str, dict], total: float, dry_run: bool) -> str:
    mode = "dry run: CPU, tiny sizes" if dry_run else "GPU"
    lines = [f"vsdain GPU check ({mode}), {_now()}, {total:.0f} s in all", ""]
    width = max(len(name) for name, _ in STEPS)
    for name, _ in STEPS:
        result = results.get(name, _outcome("not run", "an earlier step failed"))
        seconds = f"{result['seconds']:.0f} s" if "seconds" in result else ""
        lines.append(f"{name:<{width}}  {result['status']:<9} {seconds:>5}  {result['summary']}")
    lines += ["", "files: " + ", ".join(OUTPUT_FILES)]
    return "\n".join(lines) + "\n"


def _report(results: dict[str, dict], summary: str) -> str:
    lines = ["# vsdain GPU check", "", "```", summary.rstrip("\n"), "```", ""]
    for name, _ in STEPS:
        result = results.get(name)
        if result is not None and result.get("report"):
            lines += result["report"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
