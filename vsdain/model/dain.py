"""The DAIN network: sub-networks wired as the reference wires them, split into the parts that
depend on one frame, on a pair of frames, and on one timestamp, so each is computed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import adaptive_warp, project_flow
from . import layout
from .context import ContextExtractor
from .depth import build_depth_net
from .flow import FLOW_NET_DIVISOR, FLOW_RESOLUTION, FLOW_SCALE, PWCNet
from .kernel_estimation import build_head, build_trunk, run_head, run_trunk
from .padding import Padding
from .synthesis import FrameSynthesis

# Inverse depth is 1e-6 + 1 / exp(log_depth) in the reference: the epsilon keeps every splat
# weight positive, so a projected pixel always has a non-zero count.
INVERSE_DEPTH_EPSILON = 1e-6
IMAGE_CHANNELS = 3  # the context's first channels are the image itself

Projection = Literal["depth", "average"]
PROJECTIONS: tuple[str, ...] = get_args(Projection)


@dataclass(frozen=True)
class FrameFeatures:
    """Everything DAIN computes from one padded frame alone; shared by the two pairs the frame
    belongs to and by both flow directions.

    image: (B, 3, H, W) in [0, 1]; log_depth: (B, 1, H, W); inverse_depth: (B, 1, H, W) float32,
    the projection's splat weight; context: (B, 196, H, W), 195 learned channels + log-depth;
    pyramid: PWC-Net features at 1/2 .. 1/64.
    """

    image: torch.Tensor
    log_depth: torch.Tensor
    inverse_depth: torch.Tensor
    context: torch.Tensor
    pyramid: tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class PairFeatures:
    """What depends on a pair but not on the timestamp.

    flow_forward / flow_backward: (B, 2, H, W) flow 0 -> 1 and 1 -> 0 in full-resolution
    pixels, channel 0 = x (not yet scaled by t); kernel_first / kernel_second: (B, 16, H, W)
    4x4 adaptive-warping kernels, tap k = row * 4 + column.
    """

    first: FrameFeatures
    second: FrameFeatures
    flow_forward: torch.Tensor
    flow_backward: torch.Tensor
    kernel_first: torch.Tensor
    kernel_second: torch.Tensor


@dataclass(frozen=True)
class Synthesis:
    """One synthesised timestamp, at padded size, before clamping.

    blend: (1 - t) * warped first + t * warped second; output: blend + synthesis residual
    (the reference's rectified frame); flow_to_first / flow_to_second: projected flows
    F_t->0 and F_t->1 (B, 2, H, W)."""

    blend: torch.Tensor
    output: torch.Tensor
    flow_to_first: torch.Tensor
    flow_to_second: torch.Tensor


class DAIN(nn.Module):
    """Depth-Aware Video Frame Interpolation (Bao et al., CVPR 2019).

    Attribute names and registration order are the reference's, so the released ``best.pth``
    loads with ``strict=True``. ``projection="average"`` replaces the inverse-depth splat
    weights by ones (the paper's DA-None ablation); the checkpoint layout is unchanged.
    """

    def __init__(self, projection: Projection = "depth") -> None:
        super().__init__()
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be 'depth' or 'average', got {projection!r}")
        self.projection = projection
        self.initScaleNets_filter = build_trunk()
        self.initScaleNets_filter1 = build_head()
        self.initScaleNets_filter2 = build_head()
        self.ctxNet = ContextExtractor()
        self.rectifyNet = FrameSynthesis()
        self._initialise_learned_parts()
        self.flownets = PWCNet()
        self.depthNet = build_depth_net()

    def _initialise_learned_parts(self) -> None:
        # The reference's init runs before the flow and depth nets exist, so it only touches
        # the kernel, context and synthesis nets (flow and depth come pretrained).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    # -- per frame ------------------------------------------------------------------------
    def frame_features(self, image: torch.Tensor) -> FrameFeatures:
        """(B, 3, H, W) padded frame in [0, 1], H and W divisible by 64."""
        _check_divisible(image)
        conv_input = layout.for_convolutions(image)
        log_depth = self.depthNet(conv_input).contiguous()
        inverse_depth = INVERSE_DEPTH_EPSILON + torch.exp(-log_depth.float())
        # Built once per frame, in the layout the warps read it in for every timestamp; the
        # reference's two cats gave the same values.
        context = layout.for_warping(
            torch.cat([image, *self.ctxNet.levels(conv_input), log_depth.detach()], dim=1)
        )
        return FrameFeatures(
            image=image,
            log_depth=log_depth,
            inverse_depth=inverse_depth,
            context=context,
            pyramid=self.flownets.features(conv_input),
        )

    # -- per pair -------------------------------------------------------------------------
    def _full_resolution_flow(self, coarse: torch.Tensor) -> torch.Tensor:
        # The reference scales by t before upsampling; upsampling is linear, so scaling the
        # upsampled flow per timestamp gives the same values and saves one upsample per t.
        return F.interpolate(
            coarse * FLOW_SCALE, scale_factor=FLOW_RESOLUTION, mode="bilinear", align_corners=False
        ).contiguous()

    def pair_features(self, first: FrameFeatures, second: FrameFeatures) -> PairFeatures:
        both = layout.for_convolutions(torch.cat([first.image, second.image], dim=1))
        trunk = run_trunk(self.initScaleNets_filter, both)
        return PairFeatures(
            first=first,
            second=second,
            flow_forward=self._full_resolution_flow(
                self.flownets.decode(first.pyramid, second.pyramid)
            ),
            flow_backward=self._full_resolution_flow(
                self.flownets.decode(second.pyramid, first.pyramid)
            ),
            kernel_first=run_head(self.initScaleNets_filter1, trunk).contiguous(),
            kernel_second=run_head(self.initScaleNets_filter2, trunk).contiguous(),
        )

    # -- per timestamp --------------------------------------------------------------------
    def _splat_weight(self, frame: FrameFeatures) -> torch.Tensor | None:
        return frame.inverse_depth if self.projection == "depth" else None

    def _project(self, flow: torch.Tensor, frame: FrameFeatures, fill_holes: bool) -> torch.Tensor:
        # Projection sums many splats per pixel; it runs in float32 even for a half model.
        weight = self._splat_weight(frame)
        projected = project_flow(flow.float(), weight, fill_holes=fill_holes)
        return projected.to(flow.dtype)

    def synthesize(self, pair: PairFeatures, t: float, *, fill_holes: bool = True) -> Synthesis:
        """The frame at time t in (0, 1) between the pair's frames (padded size, unclamped).

        ``fill_holes`` is the reference's inference behaviour; its training keeps holes at 0
        (there the flag was tied to autograd, here it is explicit).
        """
        first, second = pair.first, pair.second
        flow_to_first = self._project(pair.flow_forward * t, first, fill_holes)
        flow_to_second = self._project(pair.flow_backward * (1.0 - t), second, fill_holes)
        if torch.is_grad_enabled():
            warped_first = adaptive_warp(first.image, flow_to_first, pair.kernel_first)
            warped_second = adaptive_warp(second.image, flow_to_second, pair.kernel_second)
            # The context path sees detached flows and kernels, as in the reference.
            context_first = adaptive_warp(
                first.context, flow_to_first.detach(), pair.kernel_first.detach()
            )
            context_second = adaptive_warp(
                second.context, flow_to_second.detach(), pair.kernel_second.detach()
            )
        else:
            # Without gradients the detaching changes nothing, and the image is the context's
            # first channels warped by the same flow and kernel: one warp gives both, equal
            # to the separate warps (the warp treats every channel alike).
            context_first = adaptive_warp(first.context, flow_to_first, pair.kernel_first)
            context_second = adaptive_warp(second.context, flow_to_second, pair.kernel_second)
            warped_first = context_first[:, :IMAGE_CHANNELS]
            warped_second = context_second[:, :IMAGE_CHANNELS]
        blend = (1.0 - t) * warped_first + t * warped_second
        synthesis_input = torch.cat(
            [
                blend,
                warped_first,
                warped_second,
                flow_to_first,
                flow_to_second,
                pair.kernel_first,
                pair.kernel_second,
                context_first,
                context_second,
            ],
            dim=1,
        )
        return Synthesis(
            blend=blend,
            output=self.rectifyNet(synthesis_input) + blend,
            flow_to_first=flow_to_first,
            flow_to_second=flow_to_second,
        )

    # -- whole-pair conveniences ----------------------------------------------------------
    def forward(
        self,
        first_image: torch.Tensor,
        second_image: torch.Tensor,
        t: float = 0.5,
        *,
        fill_holes: bool = False,
    ) -> Synthesis:
        """Training-style pass on padded frames (B, 3, H, W), H and W divisible by 64.

        Depth runs on both frames as one batch, as in the reference, so BatchNorm in training
        mode sees the same statistics it did there.
        """
        _check_divisible(first_image)
        batch = first_image.shape[0]
        log_depth = self.depthNet(torch.cat([first_image, second_image], dim=0))
        frames = []
        for image, depth in ((first_image, log_depth[:batch]), (second_image, log_depth[batch:])):
            frames.append(
                FrameFeatures(
                    image=image,
                    log_depth=depth,
                    inverse_depth=INVERSE_DEPTH_EPSILON + torch.exp(-depth.float()),
                    context=torch.cat([self.ctxNet(image), depth.detach()], dim=1),
                    pyramid=self.flownets.features(image),
                )
            )
        pair = self.pair_features(*frames)
        return self.synthesize(pair, t, fill_holes=fill_holes)

    @torch.inference_mode()
    def interpolate(
        self, first: torch.Tensor, second: torch.Tensor, timestamps: Sequence[float]
    ) -> list[torch.Tensor]:
        """Frames at each t in ``timestamps`` between ``first`` and ``second``.

        first, second: (B, 3, H, W) RGB in [0, 1], any H and W. Returns one (B, 3, H, W)
        tensor in [0, 1] per timestamp. Flow, depth, context and kernels are computed once;
        only projection, warping and synthesis run per timestamp.
        """
        if self.training:
            raise RuntimeError("DAIN.interpolate needs eval mode: call model.eval() first")
        check_frame_pair(first, second)
        for t in timestamps:
            if not 0.0 < float(t) < 1.0:
                raise ValueError(f"timestamps must lie strictly between 0 and 1, got {t}")
        padding = Padding.for_size(*first.shape[-2:])
        pair = self.pair_features(
            self.frame_features(padding.pad(first)), self.frame_features(padding.pad(second))
        )
        return [
            padding.crop(self.synthesize(pair, float(t)).output).clamp(0.0, 1.0) for t in timestamps
        ]


def check_frame_pair(first: torch.Tensor, second: torch.Tensor) -> None:
    """Raises ValueError unless both are (B, 3, H, W) floating tensors of one shape."""
    for name, frame in (("first", first), ("second", second)):
        if frame.dim() != 4 or frame.shape[1] != 3 or not frame.is_floating_point():
            raise ValueError(
                f"{name} frame must be a floating (B, 3, H, W) RGB tensor, got "
                f"{tuple(frame.shape)} {frame.dtype}"
            )
    if first.shape != second.shape:
        raise ValueError(f"frames differ in shape: {tuple(first.shape)} vs {tuple(second.shape)}")


def _check_divisible(image: torch.Tensor) -> None:
    height, width = image.shape[-2:]
    if height % FLOW_NET_DIVISOR or width % FLOW_NET_DIVISOR:
        raise ValueError(
            f"padded frames must be multiples of {FLOW_NET_DIVISOR} on each side, got "
            f"{width}x{height}; pad with vsdain.model.padding.Padding"
        )
