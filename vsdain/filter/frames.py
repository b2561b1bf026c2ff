"""VapourSynth frames <-> torch tensors, for planar float RGB (RGBS and RGBH), and plane
copies between frames of one format."""

from __future__ import annotations

import numpy as np
import torch
import vapoursynth as vs

RGB_PLANES = 3


def frame_to_tensor(
    frame: vs.VideoFrame, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> torch.Tensor:
    """(1, 3, H, W) tensor of an RGBS or RGBH frame's planes, R, G, B, as the network takes
    them: in [0, 1], NaN as 0 and everything else (infinities, 1e30, the overshoot of a YUV
    conversion) clamped, so one bad sample damages only its neighbourhood instead of turning
    every synthesised pixel into NaN. ``dtype`` defaults to the frame's own (float32 or
    float16); the clamping happens before the cast. The frame's memory is copied, never
    aliased: VapourSynth may reuse it once the frame is released."""
    planes = np.stack([np.asarray(frame[plane]) for plane in range(RGB_PLANES)])
    return sanitized(torch.from_numpy(planes).unsqueeze(0).to(device=device), dtype)


def sanitized(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``tensor`` with NaN as 0 and everything clamped to [0, 1], then cast to ``dtype``
    (default: its own): what :func:`frame_to_tensor` does to a frame on its device."""
    tensor = torch.nan_to_num(tensor, nan=0.0).clamp_(0.0, 1.0)
    return tensor.to(dtype=dtype or tensor.dtype)


def single_image(image: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) or (3, H, W) tensor -> (3, H, W); ValueError for anything else."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected a batch of one frame, got {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != RGB_PLANES:
        raise ValueError(f"expected (3, H, W) RGB, got {tuple(image.shape)}")
    return image


def tensor_to_planes(image: torch.Tensor, sample_type: np.dtype) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor -> (3, H, W) contiguous CPU array of ``sample_type``,
    ready for :func:`planes_to_frame`."""
    image = single_image(image)
    torch_type = torch.from_numpy(np.empty(0, dtype=sample_type)).dtype
    return np.ascontiguousarray(image.detach().to(device="cpu", dtype=torch_type).numpy())


def planes_to_frame(planes: np.ndarray, template: vs.VideoFrame) -> vs.VideoFrame:
    """A new frame with ``template``'s format, size and properties, holding ``planes``
    ((3, H, W), cast to the frame's sample type)."""
    frame = template.copy()
    expected = (RGB_PLANES, frame.height, frame.width)
    if planes.shape != expected:
        raise ValueError(f"planes have shape {planes.shape}, the frame needs {expected}")
    for plane in range(RGB_PLANES):
        np.copyto(np.asarray(frame[plane]), planes[plane], casting="same_kind")
    return frame


def copy_planes(source: vs.VideoFrame, template: vs.VideoFrame) -> vs.VideoFrame:
    """A copy of ``template`` (its properties) holding ``source``'s pixels; both frames must
    have one format and size."""
    if source.format.id != template.format.id or (source.width, source.height) != (
        template.width,
        template.height,
    ):
        raise ValueError(
            f"cannot copy {source.format.name} {source.width}x{source.height} planes into a "
            f"{template.format.name} {template.width}x{template.height} frame"
        )
    frame = template.copy()
    for plane in range(frame.format.num_planes):
        np.copyto(np.asarray(frame[plane]), np.asarray(source[plane]))
    return frame
