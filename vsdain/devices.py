"""A user's choice of device, turned into a ``torch.device`` the same way everywhere: the
filter's ``device=`` argument and the commands' ``--device`` option."""

from __future__ import annotations

import torch


def resolve_device(device: object, *, name: str = "device") -> torch.device:
    """None: CUDA when PyTorch sees a GPU, else the CPU. Otherwise ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"`` (or a ``torch.device``) for a device that exists here.

    Raises ValueError whose message names the argument: ``name`` is ``"device"`` for a keyword
    argument (``device='cuda:1'``) or an option such as ``"--device"`` (``--device cuda:1``).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    as_option = name.startswith("-")
    given = f"{name} {device}" if as_option else f"{name}={device!r}"
    use_cpu = f"{name} cpu" if as_option else f"{name}='cpu'"
    if not isinstance(device, str | torch.device):
        raise ValueError(f"{name} must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    unknown = f"{name} must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}"
    try:
        target = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(unknown) from None
    if target.type not in ("cpu", "cuda"):
        raise ValueError(unknown)
    if target.type == "cpu":
        return target
    if not torch.cuda.is_available():
        raise ValueError(
            f"{given} asks for CUDA, but PyTorch sees no CUDA GPU; use {use_cpu} or install "
            "a CUDA build of PyTorch"
        )
    count = torch.cuda.device_count()
    if target.index is not None and target.index >= count:
        raise ValueError(
            f"{given}: there are only {count} CUDA device(s), cuda:0..cuda:{count - 1}"
        )
    return target
