"""A description of the machine the numbers come from, for the report's header."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Machine:
    cpu: str
    cpu_cores: int
    torch_threads: int
    vapoursynth_threads: int
    device: str
    versions: str

    def lines(self) -> list[str]:
        return [
            f"CPU: {self.cpu}, {self.cpu_cores} cores available",
            f"Device: {self.device}",
            f"Threads: torch {self.torch_threads}, VapourSynth {self.vapoursynth_threads}",
            f"Versions: {self.versions}",
        ]

    @property
    def short_name(self) -> str:
        """A file-name-safe word for the device, e.g. ``cpu-amd-epyc-2c`` or ``nvidia-h100``."""
        name = f"cpu-{self.cpu}-{self.cpu_cores}c" if self.device == "cpu" else self.device
        kept = "".join(char if char.isalnum() else "-" for char in name.lower())
        return "-".join(part for part in kept.split("-") if part)[:48]


def describe(device: torch.device) -> Machine:
    import vapoursynth as vs

    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        device_text = f"{properties.name} ({properties.total_memory / 2**30:.0f} GiB)"
    else:
        device_text = "cpu"
    version = vs.core.core_version
    return Machine(
        cpu=cpu_model(),
        cpu_cores=available_cores(),
        torch_threads=torch.get_num_threads(),
        vapoursynth_threads=vs.core.num_threads,
        device=device_text,
        versions=(
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"VapourSynth R{version.release_major}"
        ),
    )


def available_cores() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name where the OS says it, else the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
