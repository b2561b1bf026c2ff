"""Image-quality measures as frame-interpolation papers compute them: on 8-bit RGB frames.

Every function takes two (H, W, 3) uint8 arrays, the interpolated frame and the ground truth.
A network's float output is first brought to 8 bits with :func:`to_8bit` (clip to [0, 1],
x255, round half to even), exactly as the reference demo saves its PNGs before scoring them.

- PSNR: 10 log10(255^2 / MSE), the MSE over all pixels and all three channels. A data set's
  PSNR is the mean of the per-frame values (not the PSNR of the pooled MSE).
- SSIM (Wang et al., 2004): Gaussian window of 11 taps with sigma 1.5 (normalised to sum 1),
  constants K1 = 0.01 and K2 = 0.03 with data range L = 255, population (biased) local
  variances, and only the "valid" part of the map, where the window lies wholly inside the
  image (a 5-pixel border is left out). With ``channels="rgb"`` (default) the map is computed
  on each of R, G and B separately and the three means are averaged: scikit-image's
  ``structural_similarity(..., channel_axis=-1, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)`` gives the same number. With
  ``channels="luma"`` it is computed once on BT.601 luma (0.299 R + 0.587 G + 0.114 B, full
  range, not rounded), the convention of Wang et al.'s MATLAB ``ssim.m``, which takes one
  grey image. Papers differ here and often do not say which they used; DAIN's reference
  repository has no SSIM code at all, so its published SSIM cannot be traced to either. The
  two conventions typically differ in the third decimal, so compare numbers of one kind only.
- IE, the interpolation error of the Middlebury benchmark (Baker et al., IJCV 2011): the
  root-mean-square over pixels of the per-pixel difference, the difference of a colour pixel
  being the L2 norm of its RGB difference vector: sqrt(mean over pixels of
  (dR^2 + dG^2 + dB^2)).
- MAE: mean absolute difference over all pixels and channels. The reference repository's
  ``demo_MiddleBury.py`` prints this under the name "interpolation error", so DAIN's numbers
  for Middlebury "other" are of this kind, not RMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

PEAK = 255.0  # 8-bit data range
SSIM_WINDOW = 11  # Gaussian taps, as in Wang et al.
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as MATLAB's rgb2gray
SSIM_CHANNELS = ("rgb", "luma")


@dataclass(frozen=True)
class Scores:
    """The measures of one interpolated frame against its ground truth (units: dB for PSNR,
    8-bit levels for IE and MAE; SSIM is in [-1, 1])."""

    psnr: float
    ssim: float
    ie: float
    mae: float


def to_8bit(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) float RGB in [0, 1] -> (H, W, 3) uint8, values clipped to
    [0, 1], scaled by 255 and rounded to the nearest integer (ties to even)."""
    if frame.dim() == 4:
        if frame.shape[0] != 1:
            raise ValueError(f"expected one frame, got a batch of {frame.shape[0]}")
        frame = frame[0]
    if frame.dim() != 3 or frame.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) RGB frame, got {tuple(frame.shape)}")
    levels = torch.round(frame.detach().float().clamp(0.0, 1.0) * PEAK)
    return levels.to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def to_float(frame: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1], the network's input convention."""
    _check_8bit_rgb(frame, "frame")
    return torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1))).float()[None] / PEAK


def _check_8bit_rgb(frame: np.ndarray, name: str) -> None:
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"{name} must be an (H, W, 3) uint8 array, got {frame.shape} {frame.dtype}"
        )


def _check_pair(ours: np.ndarray, truth: np.ndarray) -> None:
    _check_8bit_rgb(ours, "ours")
    _check_8bit_rgb(truth, "truth")
    if ours.shape != truth.shape:
        raise ValueError(f"frames differ in size: {ours.shape} vs {truth.shape}")


def _difference(ours: np.ndarray, truth: np.ndarray) -> np.ndarray:
    _check_pair(ours, truth)
    return ours.astype(np.float64) - truth.astype(np.float64)


def psnr(ours: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical frames."""
    mse = float(np.mean(_difference(ours, truth) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(PEAK**2 / mse)


def interpolation_error(ours: np.ndarray, truth: np.ndarray) -> float:
    """Middlebury IE: RMS over pixels of the RGB difference vector's length."""
    squared = np.sum(_difference(ours, truth) ** 2, axis=2)
    return float(np.sqrt(np.mean(squared)))


def mean_absolute_error(ours: np.ndarray, truth: np.ndarray) -> float:
    """Mean |difference| over pixels and channels (the DAIN demo's "interpolation error")."""
    return float(np.mean(np.abs(_difference(ours, truth))))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """(size,) float64 1-D Gaussian normalised to sum 1; the 2-D window is its outer product
    (MATLAB's ``fspecial('gaussian', 11, 1.5)``)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def _local_mean(planes: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    # Separable filtering without padding: only windows wholly inside the image survive.
    channels = planes.shape[1]
    vertical = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    horizontal = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    filtered = torch.nn.functional.conv2d(planes, vertical, groups=channels)
    return torch.nn.functional.conv2d(filtered, horizontal, groups=channels)


def ssim(ours: np.ndarray, truth: np.ndarray, *, channels: str = "rgb") -> float:
    """Mean structural similarity (see the module docstring for the exact convention).

    channels: "rgb" (per channel, averaged) or "luma". Frames must be at least 11x11.
    """
    _check_pair(ours, truth)
    if channels not in SSIM_CHANNELS:
        raise ValueError(f"channels must be one of {SSIM_CHANNELS}, got {channels!r}")
    height, width = ours.shape[:2]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}")

    def planes(frame: np.ndarray) -> torch.Tensor:
        values = torch.from_numpy(frame.astype(np.float64)).permute(2, 0, 1)
        if channels == "luma":
            weights = torch.tensor(LUMA_WEIGHTS, dtype=torch.float64).view(3, 1, 1)
            values = (values * weights).sum(dim=0, keepdim=True)
        return values[None]

    x, y = planes(ours), planes(truth)
    window = gaussian_window()
    mean_x, mean_y = _local_mean(x, window), _local_mean(y, window)
    variance_x = _local_mean(x * x, window) - mean_x**2
    variance_y = _local_mean(y * y, window) - mean_y**2
    covariance = _local_mean(x * y, window) - mean_x * mean_y
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (variance_x + variance_y + c2)
    )
    # Mean per channel, then over channels (equal sizes make this the overall mean).
    return float(ssim_map.mean())


def score(ours: np.ndarray, truth: np.ndarray, *, ssim_channels: str = "rgb") -> Scores:
    """All measures of one (H, W, 3) uint8 frame against its (H, W, 3) uint8 ground truth."""
    return Scores(
        psnr=psnr(ours, truth),
        ssim=ssim(ours, truth, channels=ssim_channels),
        ie=interpolation_error(ours, truth),
        mae=mean_absolute_error(ours, truth),
    )
