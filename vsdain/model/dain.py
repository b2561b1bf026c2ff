"""The DAIN network: sub-networks wired as the reference wires them, split into the parts that
depend on one frame, on a pair of frames, and on one timestamp, so each is computed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import OpPath, adaptive_warp, project_flow, resolve_op_path
from ..ops.warping import warp_layout
from . import layout
from .context import ContextExtractor
from .depth import build_depth_net
from .flow import FLOW_NET_DIVISOR, FLOW_RESOLUTION, FLOW_SCALE, PWCNet
from .kernel_estimation import build_head, build_trunk, run_head, run_trunk
from .padding import Padding
from .synthesis import SYNTHESIS_RADIUS, FrameSynthesis
from .tiling import Window, check_tile, tile_windows

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
    ``ops``: the op path request (see :meth:`use_ops`).
    """

    def __init__(self, projection: Projection = "depth", *, ops: str | None = None) -> None:
        super().__init__()
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be 'depth' or 'average', got {projection!r}")
        self.projection = projection
        self.use_ops(ops)
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

    # -- op path ----------------------------------------------------------------------------
    def use_ops(self, backend: str | None = None) -> DAIN:
        """Choose how the custom ops run: "auto" (the CUDA kernels on a GPU with CuPy, else the
        PyTorch references), "reference" or "cuda"; None takes ``VSDAIN_OPS`` (read now, not
        per call). Resolved for the parameters' device on first use and again after a move.
        Raises :class:`vsdain.ops.OpsBackendError` for an unknown request. Returns self."""
        from ..ops.backend import requested_backend

        self._ops_request = requested_backend(backend)
        self._op_path: OpPath | None = None
        return self

    def __getstate__(self) -> dict:
        # The resolved path holds a lock and a launcher; a copy resolves its own.
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {**state, "_op_path": None}

    @property
    def op_path(self) -> OpPath:
        """The :class:`vsdain.ops.OpPath` for this network's device."""
        device = next(self.parameters()).device
        if self._op_path is None or self._op_path.device != device:
            self._op_path = resolve_op_path(device, self._ops_request)
        return self._op_path

    # -- per frame ------------------------------------------------------------------------
    def frame_features(self, image: torch.Tensor) -> FrameFeatures:
        """(B, 3, H, W) padded frame in [0, 1], H and W divisible by 64."""
        _check_divisible(image)
        conv_input = layout.for_convolutions(image)
        return self._frame_features(image, conv_input, self.depthNet(conv_input))

    def _frame_features(
        self, image: torch.Tensor, conv_input: torch.Tensor, log_depth: torch.Tensor
    ) -> FrameFeatures:
        log_depth = log_depth.contiguous()
        # Built once per frame, in the layout the warps read it in for every timestamp; the
        # reference's two cats gave the same values.
        form = self.op_path.warp_form(differentiable=torch.is_grad_enabled())
        context = warp_layout(
            torch.cat([image, *self.ctxNet.levels(conv_input), log_depth.detach()], dim=1), form
        )
        return FrameFeatures(
            image=image,
            log_depth=log_depth,
            inverse_depth=INVERSE_DEPTH_EPSILON + torch.exp(-log_depth.float()),
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
        ops = self.op_path
        return PairFeatures(
            first=first,
            second=second,
            flow_forward=self._full_resolution_flow(
                self.flownets.decode(first.pyramid, second.pyramid, ops)
            ),
            flow_backward=self._full_resolution_flow(
                self.flownets.decode(second.pyramid, first.pyramid, ops)
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
        projected = project_flow(flow.float(), weight, fill_holes=fill_holes, backend=self.op_path)
        return projected.to(flow.dtype)

    def _fill_holes(self, fill_holes: bool | None) -> bool:
        # The reference fills the projection's holes at inference and keeps them at 0 in
        # training (there the flag was tied to autograd; here it follows the module's mode
        # unless given).
        return not self.training if fill_holes is None else bool(fill_holes)

    def synthesize(
        self,
        pair: PairFeatures,
        t: float,
        *,
        fill_holes: bool | None = None,
        tile: int | None = None,
    ) -> Synthesis:
        """The frame at time t in (0, 1) between the pair's frames (padded size, unclamped).

        fill_holes: None follows the mode (filled in eval mode, as the reference's inference;
        kept at 0 in training mode, as its training).
        tile: None computes the warps and the synthesis network on the whole frame at once;
        an int (>= :data:`vsdain.model.tiling.MIN_TILE`) computes them tile by tile, each
        tile with a margin of the synthesis network's reach, which gives the same result
        (to float rounding) with far less memory. The flow projection is always whole-frame.
        """
        flows = self.project_flows(pair, t, fill_holes=fill_holes)
        height, width = flows[0].shape[-2:]
        if tile is None:
            blend, output = self.synthesize_window(pair, t, flows, Window(0, 0, height, width))
            return Synthesis(blend, output, *flows)

        check_tile(tile)
        batch = flows[0].shape[0]
        blend = flows[0].new_empty(
            batch, IMAGE_CHANNELS, height, width, dtype=pair.first.image.dtype
        )
        output = torch.empty_like(blend)
        for core, margin in tile_windows(height, width, tile, SYNTHESIS_RADIUS):
            part_blend, part_output = self.synthesize_window(pair, t, flows, margin)
            inside = core.inside(margin)
            blend[core.slices] = part_blend[inside]
            output[core.slices] = part_output[inside]
            del part_blend, part_output  # free the tile before the next one is computed
        return Synthesis(blend, output, *flows)

    def project_flows(
        self, pair: PairFeatures, t: float, *, fill_holes: bool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The projected flows (F_t->0, F_t->1), each (B, 2, H, W): the whole-frame part of a
        timestamp. ``fill_holes`` as for :meth:`synthesize`."""
        fill_holes = self._fill_holes(fill_holes)
        return (
            self._project(pair.flow_forward * t, pair.first, fill_holes),
            self._project(pair.flow_backward * (1.0 - t), pair.second, fill_holes),
        )

    def synthesize_window(
        self,
        pair: PairFeatures,
        t: float,
        flows: tuple[torch.Tensor, torch.Tensor],
        window: Window,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(blend, output), each (B, 3, h, w), on ``window`` of the padded frame, from the
        projected ``flows`` (:meth:`project_flows`): the warps read the whole source frames,
        everything else is the window's own. Exact on the window's inside shrunk by
        SYNTHESIS_RADIUS (and at the frame's edges): what tiling relies on."""
        blend, synthesis_input = self.synthesis_input(pair, t, flows, window)
        features = self.rectifyNet.first_layer(synthesis_input)
        del synthesis_input  # the widest tensor of the timestamp: gone before the rest runs
        return blend, self.rectifyNet.refine(features) + blend

    def synthesis_input(
        self,
        pair: PairFeatures,
        t: float,
        flows: tuple[torch.Tensor, torch.Tensor],
        window: Window,
        *,
        out: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(blend (B, 3, h, w), the synthesis network's input (B, 437, h, w)) on ``window``:
        everything of :meth:`synthesize_window` before the network. ``out``: where to write
        the input (a (B, 437, h, w) part of a larger batch), instead of a new tensor."""
        first, second = pair.first, pair.second
        ops = self.op_path
        origin = (window.top, window.left)
        flow_to_first, flow_to_second = (flow[window.slices] for flow in flows)
        kernel_first = pair.kernel_first[window.slices]
        kernel_second = pair.kernel_second[window.slices]
        if torch.is_grad_enabled():
            warped_first = adaptive_warp(
                first.image, flow_to_first, kernel_first, origin, backend=ops
            )
            warped_second = adaptive_warp(
                second.image, flow_to_second, kernel_second, origin, backend=ops
            )
            # The context path sees detached flows and kernels, as in the reference.
            context_first = adaptive_warp(
                first.context, flow_to_first.detach(), kernel_first.detach(), origin, backend=ops
            )
            context_second = adaptive_warp(
                second.context, flow_to_second.detach(), kernel_second.detach(), origin,
                backend=ops,
            )  # fmt: skip
        else:
            # Without gradients the detaching changes nothing, and the image is the context's
            # first channels warped by the same flow and kernel: one warp gives both, equal
            # to the separate warps (the warp treats every channel alike).
            context_first = adaptive_warp(
                first.context, flow_to_first, kernel_first, origin, differentiable=False,
                backend=ops,
            )  # fmt: skip
            context_second = adaptive_warp(
                second.context, flow_to_second, kernel_second, origin, differentiable=False,
                backend=ops,
            )  # fmt: skip
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
                kernel_first,
                kernel_second,
                context_first,
                context_second,
            ],
            dim=1,
            out=out,
        )
        return blend, synthesis_input

    def synthesize_timestamps(
        self, pair: PairFeatures, timestamps: Sequence[float], *, fill_holes: bool | None = None
    ) -> list[Synthesis]:
        """:meth:`synthesize` (whole frame) for each t of ``timestamps``, with the synthesis
        network run once on all of them as one batch of ``len(timestamps) * B`` images.

        The projections and warps still run per timestamp; only the convolutions are batched,
        which is where a GPU gains from a larger batch. Each result equals the one
        :meth:`synthesize` gives for its t up to the convolutions' rounding for the batch size
        (bit-exact on the CPU, where each image of a batch is computed alike). Memory: every
        timestamp's synthesis input (437 channels per pixel) is held at once, so the
        per-timestamp work memory is multiplied by ``len(timestamps)``; callers decide whether
        that fits (see :class:`vsdain.filter.pair_cache.PairCache`).
        """
        if not timestamps:
            return []
        flows = [self.project_flows(pair, float(t), fill_holes=fill_holes) for t in timestamps]
        batch, _, height, width = flows[0][0].shape
        window = Window(0, 0, height, width)
        blends = []
        batch_input: torch.Tensor | None = None
        for index, (t, projected) in enumerate(zip(timestamps, flows, strict=True)):
            part = None if batch_input is None else batch_input[index * batch : (index + 1) * batch]
            blend, synthesis_input = self.synthesis_input(
                pair, float(t), projected, window, out=part
            )
            if batch_input is None:
                # The first timestamp's input decides the batch's memory format, so that the
                # first convolution runs the same algorithm as on a single timestamp; the
                # others are written into the batch directly.
                batch_input = torch.empty(
                    (len(timestamps) * batch, *synthesis_input.shape[1:]),
                    dtype=synthesis_input.dtype,
                    device=synthesis_input.device,
                    memory_format=_memory_format(synthesis_input),
                )
                batch_input[:batch] = synthesis_input
            blends.append(blend)
            del synthesis_input
        features = self.rectifyNet.first_layer(batch_input)
        del batch_input
        residual = self.rectifyNet.refine(features)
        del features
        return [
            Synthesis(blend, residual[index * batch : (index + 1) * batch] + blend, *projected)
            for index, (blend, projected) in enumerate(zip(blends, flows, strict=True))
        ]

    # -- whole-pair conveniences ----------------------------------------------------------
    def forward(
        self,
        first_image: torch.Tensor,
        second_image: torch.Tensor,
        t: float = 0.5,
        *,
        fill_holes: bool | None = None,
    ) -> Synthesis:
        """Training-style pass on padded frames (B, 3, H, W), H and W divisible by 64;
        ``fill_holes`` as for :meth:`synthesize`.

        Depth runs on both frames as one batch, as in the reference, so BatchNorm in training
        mode sees the same statistics it did there; everything else is what
        :meth:`frame_features`, :meth:`pair_features` and :meth:`synthesize` compute.
        """
        _check_divisible(first_image)
        batch = first_image.shape[0]
        log_depth = self.depthNet(
            layout.for_convolutions(torch.cat([first_image, second_image], dim=0))
        )
        frames = [
            self._frame_features(image, layout.for_convolutions(image), depth)
            for image, depth in (
                (first_image, log_depth[:batch]),
                (second_image, log_depth[batch:]),
            )
        ]
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


def _memory_format(tensor: torch.Tensor) -> torch.memory_format:
    """The layout ``tensor`` is laid out in: channels-last or the default one."""
    channels_last = tensor.dim() == 4 and tensor.shape[1] > 1 and tensor.stride(1) == 1
    return torch.channels_last if channels_last else torch.contiguous_format


def _check_divisible(image: torch.Tensor) -> None:
    height, width = image.shape[-2:]
    if height % FLOW_NET_DIVISOR or width % FLOW_NET_DIVISOR:
        raise ValueError(
            f"padded frames must be multiples of {FLOW_NET_DIVISOR} on each side, got "
            f"{width}x{height}; pad with vsdain.model.padding.Padding"
        )
