"""DAIN's adaptive warping layer: argument checks, the pure-PyTorch reference and its fast CPU
inference form, the CUDA kernels' autograd Function (kernels in ``warping.cu`` beside this file)
and the public function that chooses between them.

Mirrors the reference's ``FilterInterpolation`` CUDA op (``my_package/FilterInterpolation``):
each output pixel samples the input at ``p + flow(p)`` through a 4x4 window whose taps are
weighted by a per-pixel learned kernel times the bilinear weights (paper eq. 3).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .backend import OpPath, SelfCheckCase, WarpForm, resolve_op_path
from .kernel_source import (
    KERNEL_TYPES,
    KernelLauncher,
    OpKernels,
    accum_empty,
    accum_zeros,
    kernel_dtype,
)

OP = "warping"

WINDOW = 4  # taps per axis; the kernel network predicts WINDOW**2 = 16 channels per pixel


def check_warp_arguments(
    image: torch.Tensor,
    flow: torch.Tensor,
    kernel: torch.Tensor,
    origin: tuple[int, int] = (0, 0),
) -> None:
    """The checks every warping path makes: ValueError naming the argument."""
    if image.dim() != 4:
        raise ValueError(f"adaptive_warp: image must be (B, C, H, W), got {tuple(image.shape)}")
    if flow.dim() != 4 or flow.shape[:2] != (image.shape[0], 2):
        raise ValueError(
            f"adaptive_warp: flow must be (B, 2, h, w) with B = {image.shape[0]}, "
            f"got {tuple(flow.shape)}"
        )
    batch, _, out_height, out_width = flow.shape
    if kernel.shape != (batch, WINDOW * WINDOW, out_height, out_width):
        raise ValueError(
            f"adaptive_warp: kernel must be (B, 16, h, w) = "
            f"{(batch, WINDOW * WINDOW, out_height, out_width)}, got {tuple(kernel.shape)}"
        )
    top, left = origin
    height, width = image.shape[-2:]
    if not (top >= 0 and top + out_height <= height and left >= 0 and left + out_width <= width):
        raise ValueError(
            f"adaptive_warp: the output window {out_width}x{out_height} at (top, left) = "
            f"{origin} does not fit inside the {width}x{height} image"
        )


def adaptive_warp_reference(
    image: torch.Tensor,
    flow: torch.Tensor,
    kernel: torch.Tensor,
    origin: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """Warp ``image`` by ``flow`` through per-pixel 4x4 kernels.

    Args:
        image: (B, C, H, W) frame or feature map, any C (DAIN uses 3 and 196).
        flow: (B, 2, h, w) in pixels, channel 0 = x; output pixel p reads from p + flow(p).
        kernel: (B, 16, h, w) tap weights; channel k = 4*j + i weighs the tap at row offset j
            and column offset i (0..3) from (floor(q_y) - 1, floor(q_x) - 1).
        origin: (top, left) of the output window in the image. The output covers image rows
            top .. top + h - 1 and columns left .. left + w - 1 (the whole image by default);
            every position p below is in image coordinates, so a window of the output equals
            the same window of the whole-image warp exactly (tiling relies on it).

    Returns:
        (B, C, h, w) in the dtype of ``image``.

    For each output pixel p with q = p + flow(p), q is valid when 0 <= q_x <= W-1,
    0 <= q_y <= H-1, |flow_x| < W/2 and |flow_y| < H/2 (NaN and infinite flow are invalid).
    An invalid pixel copies ``image`` at p. A valid one is, with x0 = floor(q_x),
    y0 = floor(q_y), alpha = q_x - x0 and beta = q_y - y0::

        sum_{j,i} kernel[4j+i] * image[clamp(y0-1+j), clamp(x0-1+i)] * a_i * b_j

    where a_i is 1-alpha for i in {0, 1} and alpha for i in {2, 3}, b_j likewise with beta, and
    clamping replicates the border. With kernel 1 at taps 5, 6, 9, 10 and 0 elsewhere this is
    bilinear sampling.

    Coordinates are computed in at least float32 (a float16 x coordinate cannot hold the
    fractional part at video widths); the taps are accumulated in the dtype of ``image``.

    Differentiable by autograd in all three inputs (in ``flow`` through alpha and beta). The
    gradient is that of the function above, which for invalid pixels is the identity with
    respect to ``image``; the original CUDA backward gives those pixels no gradient at all.
    This is deliberate: the reference is the mathematical function.
    """
    check_warp_arguments(image, flow, kernel, origin)
    batch, channels, height, width = image.shape
    out_height, out_width = flow.shape[-2:]
    valid, x0, y0, alpha, beta = _sample_geometry(flow, height, width, origin)
    geometry_dtype = alpha.dtype
    column_weights = (1 - alpha, 1 - alpha, alpha, alpha)
    row_weights = (1 - beta, 1 - beta, beta, beta)
    tap_columns = [(x0 - 1 + i).clamp(0, width - 1) for i in range(WINDOW)]
    tap_rows = [(y0 - 1 + j).clamp(0, height - 1) * width for j in range(WINDOW)]

    pixels = out_height * out_width
    flat_image = image.reshape(batch, channels, height * width)
    warped = flat_image.new_zeros(batch, channels, pixels)
    # One tap at a time keeps the peak memory at a few (B, C, H, W) tensors; DAIN warps
    # 196-channel context features at full resolution.
    for j in range(WINDOW):
        for i in range(WINDOW):
            index = (tap_rows[j] + tap_columns[i]).reshape(batch, 1, pixels)
            taps = flat_image.gather(2, index.expand(batch, channels, pixels))
            tap_weight = kernel[:, WINDOW * j + i].to(geometry_dtype) * column_weights[i]
            tap_weight = (tap_weight * row_weights[j]).to(image.dtype)
            warped.addcmul_(taps, tap_weight.reshape(batch, 1, pixels))
    warped = warped.reshape(batch, channels, out_height, out_width)
    return torch.where(valid.unsqueeze(1), warped, _window(image, flow, origin))


@torch.no_grad()
def adaptive_warp_inference(
    image: torch.Tensor,
    flow: torch.Tensor,
    kernel: torch.Tensor,
    origin: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """:func:`adaptive_warp_reference` for inference on the CPU: the same function, computed
    without autograd in a cache-friendly order, about five times faster for DAIN's
    196-channel context.

    The image is read channels-last, so each tap gathers whole pixels (C contiguous values);
    the 16 taps of a block of pixels are gathered, weighted and summed while they are in the
    cache. The result is returned channels-last (``torch.channels_last`` strides), which the
    convolutions that read it prefer on the CPU. Sums run over the taps in the same order as
    the reference's, but within the same pixel, so results agree to rounding (a few ulp).
    """
    check_warp_arguments(image, flow, kernel, origin)
    batch, channels, height, width = image.shape
    out_height, out_width = flow.shape[-2:]
    pixels = out_height * out_width
    valid, x0, y0, alpha, beta = _sample_geometry(flow, height, width, origin)
    steps = torch.arange(WINDOW, device=flow.device)
    # (B, H, W, WINDOW) tap positions and weights along each axis.
    tap_columns = (x0.unsqueeze(-1) - 1 + steps).clamp(0, width - 1)
    tap_rows = (y0.unsqueeze(-1) - 1 + steps).clamp(0, height - 1) * width
    alpha, beta = alpha.unsqueeze(-1), beta.unsqueeze(-1)
    column_weights = torch.cat([1 - alpha, 1 - alpha, alpha, alpha], dim=-1)
    row_weights = torch.cat([1 - beta, 1 - beta, beta, beta], dim=-1)
    # Tap 4j + i sits at row j, column i of the window, as the kernel's channels are ordered.
    index = (tap_rows.unsqueeze(-1) + tap_columns.unsqueeze(-2)).reshape(batch, pixels, -1)
    taps_kernel = (
        kernel.to(alpha.dtype)
        .permute(0, 2, 3, 1)
        .reshape(batch, out_height, out_width, WINDOW, WINDOW)
    )
    weights = taps_kernel * column_weights.unsqueeze(-2) * row_weights.unsqueeze(-1)
    weights = weights.reshape(batch, pixels, WINDOW * WINDOW, 1).to(image.dtype)

    # (B, H*W, C) with each pixel's channels contiguous (a copy unless already channels-last).
    source = image.permute(0, 2, 3, 1).reshape(batch, height * width, channels).contiguous()
    warped = source.new_empty(batch, pixels, channels)
    for item in range(batch):
        for start in range(0, pixels, _INFERENCE_BLOCK):
            stop = min(start + _INFERENCE_BLOCK, pixels)
            taps = source[item].index_select(0, index[item, start:stop].reshape(-1))
            taps = taps.view(stop - start, WINDOW * WINDOW, channels)
            torch.sum(taps.mul_(weights[item, start:stop]), dim=1, out=warped[item, start:stop])
    # Invalid pixels copied in place: a torch.where would hold a third full-size tensor.
    invalid = ~valid.reshape(batch, pixels)
    if invalid.any():
        copies = _window(image, flow, origin).permute(0, 2, 3, 1).reshape(batch, pixels, channels)
        warped[invalid] = copies[invalid]
    return warped.view(batch, out_height, out_width, channels).permute(0, 3, 1, 2)


# Pixels per block in adaptive_warp_inference: 256 pixels' taps of 196 channels are 3 MB.
# Measured on two Zen 5 cores at 512x320: 64 -> 0.25 s, 256 -> 0.22 s, 512 -> 0.24 s per warp.
_INFERENCE_BLOCK = 256


def _window(image: torch.Tensor, flow: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
    """The image under the output window: what invalid pixels copy."""
    top, left = origin
    out_height, out_width = flow.shape[-2:]
    return image[..., top : top + out_height, left : left + out_width]


def _sample_geometry(
    flow: torch.Tensor, height: int, width: int, origin: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per output pixel (B, h, w): whether its flow is valid, the integer sample position in
    the (height, width) image (x0, y0, int64) and the fractions (alpha, beta, in at least
    float32, differentiable in ``flow``). Invalid pixels sample at p itself, so that no NaN or
    far-away index reaches the taps."""
    batch, _, out_height, out_width = flow.shape
    top, left = origin
    geometry_dtype = torch.promote_types(flow.dtype, torch.float32)
    offset = flow.to(geometry_dtype)
    factory = {"dtype": geometry_dtype, "device": flow.device}
    column = (torch.arange(out_width, **factory) + left).expand(batch, out_height, out_width)
    row = (torch.arange(out_height, **factory) + top).unsqueeze(1)
    row = row.expand(batch, out_height, out_width)
    sample_x = column + offset[:, 0]
    sample_y = row + offset[:, 1]
    valid = (
        (sample_x >= 0)
        & (sample_x <= width - 1)
        & (sample_y >= 0)
        & (sample_y <= height - 1)
        & (offset[:, 0].abs() < width / 2)
        & (offset[:, 1].abs() < height / 2)
    )
    # Invalid pixels sample at p itself so that no NaN or far-away index reaches the taps;
    # their result is replaced by the copy at the end.
    sample_x = torch.where(valid, sample_x, column)
    sample_y = torch.where(valid, sample_y, row)
    x0 = sample_x.detach().floor()
    y0 = sample_y.detach().floor()
    return valid, x0.long(), y0.long(), sample_x - x0, sample_y - y0


def adaptive_warp_kernel(
    image: torch.Tensor,
    flow: torch.Tensor,
    kernel: torch.Tensor,
    origin: tuple[int, int] = (0, 0),
    *,
    launch: KernelLauncher,
) -> torch.Tensor:
    """Adaptive warping through the kernels run by ``launch``; arguments and result as
    :func:`adaptive_warp_reference`."""
    check_warp_arguments(image, flow, kernel, origin)
    dtype = kernel_dtype(image.dtype, kernel.dtype)
    # Sample coordinates are computed in accum_t (float32 for float16 images), like the
    # reference's float32 geometry.
    geometry_dtype = KERNEL_TYPES[dtype].accum_dtype
    warped = _AdaptiveWarp.apply(
        image.to(dtype).contiguous(),
        flow.to(geometry_dtype).contiguous(),
        kernel.to(dtype).contiguous(),
        tuple(origin),
        launch,
    )
    return warped.to(image.dtype)


# A 3-channel image, flow of up to 2 pixels each way (some taps off the 5x7 image) and
# per-pixel kernels summing to about 2.
SELF_CHECK = SelfCheckCase(
    OP,
    inputs=lambda tensor: (
        tensor(3),
        tensor(2, low=-2.0, high=2.0),
        tensor(WINDOW**2, low=0.0, high=0.25),
    ),
    kernel=adaptive_warp_kernel,
    reference=adaptive_warp_reference,
)


def adaptive_warp(
    image: torch.Tensor,
    flow: torch.Tensor,
    kernel: torch.Tensor,
    origin: tuple[int, int] = (0, 0),
    *,
    differentiable: bool = True,
    backend: OpPath | str = "auto",
) -> torch.Tensor:
    """Adaptive warping layer; shapes and semantics (``origin`` included) as
    :func:`adaptive_warp_reference`.

    differentiable: False allows the CPU inference form (no autograd; result channels-last),
    for callers that need no gradient. ``backend`` as for
    :func:`vsdain.ops.correlation.correlation`.
    """
    path = backend if isinstance(backend, OpPath) else resolve_op_path(image.device, backend)
    form = path.warp_form(differentiable)
    if form == "kernel":
        launch = path.kernel_launcher(SELF_CHECK, kernel_dtype(image.dtype, kernel.dtype))
        if launch is not None:
            return adaptive_warp_kernel(image, flow, kernel, origin, launch=launch)
    if form == "inference":
        return adaptive_warp_inference(image, flow, kernel, origin)
    return adaptive_warp_reference(image, flow, kernel, origin)


def warp_layout(tensor: torch.Tensor, form: WarpForm) -> torch.Tensor:
    """``tensor``, contiguous in the layout a warp of ``form`` reads: channels-last for the CPU
    inference form (which would otherwise convert it on every call), the default layout for
    the kernels and the differentiable reference."""
    if form == "inference":
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor.contiguous()


class _AdaptiveWarp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image, flow, kernel, origin, launch):
        batch, channels, height, width = image.shape
        out_height, out_width = flow.shape[-2:]
        top, left = origin
        dims = (batch, channels, height, width, out_height, out_width, top, left)
        warped = image.new_empty(batch, channels, out_height, out_width)
        pixels = batch * out_height * out_width
        kernels = OpKernels(launch, OP, image.dtype)
        if pixels and channels:
            kernels("adaptive_warp_forward", pixels, image, flow, kernel, warped, *dims)
        ctx.save_for_backward(image, flow, kernel)
        ctx.dims = dims
        ctx.kernels = kernels
        return warped

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_warped):
        image, flow, kernel = ctx.saved_tensors
        batch, _, out_height, out_width = flow.shape
        want_image, want_flow, want_kernel = ctx.needs_input_grad[:3]
        if not (want_image or want_flow or want_kernel):
            return None, None, None, None, None
        # The image gradient is scattered with atomics, so it starts from zero; the others are
        # written in full.
        grad_image = accum_zeros(image.shape, image) if want_image else None
        grad_flow = torch.empty_like(flow) if want_flow else None
        grad_kernel = accum_empty(kernel.shape, image) if want_kernel else None
        pixels = batch * out_height * out_width
        if pixels:
            grad_warped = grad_warped.to(image.dtype).contiguous()
            ctx.kernels(
                "adaptive_warp_backward", pixels,
                image, flow, kernel, grad_warped, grad_image, grad_flow, grad_kernel, *ctx.dims,
            )  # fmt: skip
        return (
            None if grad_image is None else grad_image.to(image.dtype),
            grad_flow,
            None if grad_kernel is None else grad_kernel.to(kernel.dtype),
            None,
            None,
        )
