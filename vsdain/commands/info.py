"""``vsdain info``: versions, devices, which op path runs, and which weights load.

Meant to be pasted into bug reports, so it reports what it cannot find instead of failing:
each section catches its own errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

Row = tuple[str, str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    del args
    sections: list[tuple[str, Callable[[], list[Row]]]] = [
        ("Versions", _versions),
        ("Devices", _devices),
        ("Op path", _op_paths),
        ("Weights", _weights),
    ]
    blocks = []
    for title, gather in sections:
        try:
            rows = gather()
        except Exception as error:  # a broken environment is what this command diagnoses
            rows = [("error", _describe_error(error))]
        blocks.append(_format(title, rows))
    print("\n\n".join(blocks))
    return 0


def _versions() -> list[Row]:
    import platform

    from .. import __version__

    return [
        ("vsdain", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("VapourSynth", _guarded(_vapoursynth_version)),
        ("torch", _guarded(_torch_version)),
        ("CuPy", _guarded(_cupy_version)),
        ("NumPy", _guarded(lambda: __import__("numpy").__version__)),
    ]


def _vapoursynth_version() -> str:
    import vapoursynth as vs

    version = vs.core.core_version
    return f"R{version.release_major}" + (
        f".{version.release_minor}" if version.release_minor else ""
    )


def _torch_version() -> str:
    import torch

    cuda = torch.version.cuda
    return f"{torch.__version__} ({f'built for CUDA {cuda}' if cuda else 'CPU-only build'})"


def _cupy_version() -> str:
    import importlib.util

    if importlib.util.find_spec("cupy") is None:
        return "not installed"
    import cupy

    return cupy.__version__


def _devices() -> list[Row]:
    import torch

    from ..precision import describe_native_bfloat16

    rows = [
        ("CPU", f"{os.cpu_count()} cores, torch uses {torch.get_num_threads()} threads"),
        ("native bf16", _guarded(describe_native_bfloat16)),
    ]
    if not torch.cuda.is_available():
        return [*rows, ("CUDA", "no CUDA device")]
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        rows.append(
            (
                f"cuda:{index}",
                f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
                f"compute capability {props.major}.{props.minor}",
            )
        )
    return rows


def _op_paths() -> list[Row]:
    import torch

    devices = [torch.device("cuda", index) for index in range(_cuda_device_count())]
    devices.append(torch.device("cpu"))
    try:
        from ..ops import describe_backend
    except Exception as error:
        return [("unknown", f"cannot ask vsdain.ops.backend: {_describe_error(error)}")]
    rows = []
    for device in devices:
        try:
            backend, reason = describe_backend(device)
            rows.append((str(device), f"{backend}: {reason}"))
        except Exception as error:
            rows.append((str(device), f"error: {_describe_error(error)}"))
    return rows


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _weights() -> list[Row]:
    from .. import weights
    from ..cli_hint import command_hint

    override = os.environ.get(weights.WEIGHTS_DIR_ENV)
    rows = []
    if override:
        rows.append(("override", f"${weights.WEIGHTS_DIR_ENV} = {override}"))
    for folder in weights.weights_search_dirs():
        candidate = folder / weights.WEIGHTS_FILENAME
        if candidate.is_file():
            state = f"found, {candidate.stat().st_size:,} bytes"
        elif folder.is_dir():
            state = "not found"
        else:
            state = "not found (folder does not exist)"
        rows.append(("searched", f"{candidate}: {state}"))

    try:
        found = weights.find_weights()
    except weights.WeightsNotFoundError:
        rows.append(("using", f"nothing; run `{command_hint('download')}`"))
    else:
        rows.append(("using", str(found)))
        rows.append(("check", _guarded(lambda: _check_file(found))))
    rows.append(("mirrors", _guarded(_manifest_summary)))
    return rows


def _check_file(path: os.PathLike[str]) -> str:
    from ..weights import WeightsError, check_layout, load_state_dict_file

    try:
        state_dict = load_state_dict_file(path)
        check_layout(state_dict)
    except WeightsError as error:
        return f"FAILED: {error}"
    return f"OK ({len(state_dict)} tensors match the DAIN network)"


def _manifest_summary() -> str:
    from ..download import find_manifest, read_manifest

    manifest = find_manifest()
    return f"{manifest} ({len(read_manifest(manifest))} listed)"


def _guarded(gather: Callable[[], str]) -> str:
    try:
        return gather()
    except ImportError as error:
        return f"not available ({_describe_error(error)})"
    except Exception as error:
        return f"error: {_describe_error(error)}"


def _describe_error(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _format(title: str, rows: list[Row]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join([title, *(f"  {label:<{width}}  {value}" for label, value in rows)])
