"""VapourSynth frames <-> torch tensors, for planar float RGB (RGBS and RGBH)."""

from __future__ import annotations

import numpy as np
import torch
import vapoursynth as vs

RGB_PLANES = 3


def frame_to_tensor(
    frame: vs.VideoFrame, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> torch.Tensor:
    """(1, 3, H, W) tensor of an RGBS or RGBH frame's planes, R, G, B; values as stored
    (normally 0..1). ``dtype`` defaults to the frame's own (float32 or float16). The frame's
    memory is copied, never aliased: VapourSynth may reuse it once the frame is released."""
    planes = np.stack([np.asarray(frame[plane]) for plane in range(RGB_PLANES)])
    tensor = torch.from_numpy(planes).unsqueeze(0)
    return tensor.to(device=device, dtype=dtype or tensor.dtype)


def tensor_to_planes(image: torch.Tensor, sample_type: np.dtype) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) tensor -> (3, H, W) contiguous CPU array of ``sample_type``,
    ready for :func:`planes_to_frame`."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected a batch of one frame, got {tuple(image.shape)}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != RGB_PLANES:
        raise ValueError(f"expected (3, H, W) RGB, got {tuple(image.shape)}")
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


def tensor_to_frame(image: torch.Tensor, template: vs.VideoFrame) -> vs.VideoFrame:
    """Inverse of :func:`frame_to_tensor`: ``image`` (1, 3, H, W) written into a copy of
    ``template`` (same format, size and properties)."""
    sample_type = np.asarray(template[0]).dtype
    return planes_to_frame(tensor_to_planes(image, sample_type), template)
