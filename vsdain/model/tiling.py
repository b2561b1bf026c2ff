"""Tiles of the per-timestamp work: the windows that :meth:`vsdain.model.DAIN.synthesize`
computes one at a time when it is given a tile size.

The per-timestamp work is local once the flows are projected: the adaptive warps gather each
output pixel from the whole source frames, but only through that pixel's own flow and kernel,
and the synthesis network's output at a pixel depends on its input within
:data:`vsdain.model.synthesis.SYNTHESIS_RADIUS` pixels. So a tile computed on a window grown by
that margin (cut at the frame's edges, where the whole-frame network's zero padding applies
too) gives exactly the tile of the whole-frame result.
"""

from __future__ import annotations

from dataclasses import dataclass

# The smallest tile allowed: below it the margins cost more than the tile itself (a 32-pixel
# tile with a 10-pixel margin computes 2.6 times its area).
MIN_TILE = 32


@dataclass(frozen=True)
class Window:
    """Rows top .. top + height - 1 and columns left .. left + width - 1 of a frame."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice, slice, slice]:
        """Index of this window in a (B, C, H, W) tensor of the whole frame."""
        return (
            slice(None),
            slice(None),
            slice(self.top, self.top + self.height),
            slice(self.left, self.left + self.width),
        )

    def inside(self, outer: Window) -> tuple[slice, slice, slice, slice]:
        """Index of this window in a (B, C, h, w) tensor that covers ``outer``."""
        top, left = self.top - outer.top, self.left - outer.left
        return (
            slice(None),
            slice(None),
            slice(top, top + self.height),
            slice(left, left + self.width),
        )

    @property
    def pixels(self) -> int:
        return self.height * self.width


def check_tile(tile: object) -> int:
    """``tile`` as an int, or ValueError/TypeError naming it and the minimum."""
    if isinstance(tile, bool) or not isinstance(tile, int):
        raise TypeError(f"tile must be an int (pixels per side) or None, got {tile!r}")
    if tile < MIN_TILE:
        raise ValueError(f"tile must be at least {MIN_TILE} pixels, got {tile}")
    return tile


def tile_windows(height: int, width: int, tile: int, margin: int) -> list[tuple[Window, Window]]:
    """(core, grown) window pairs covering a height x width frame in row-major order: cores of
    ``tile`` x ``tile`` pixels (smaller along the last row and column) that partition the
    frame, each grown by ``margin`` on every side and cut at the frame's edges."""
    check_tile(tile)
    windows = []
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            core = Window(top, left, min(tile, height - top), min(tile, width - left))
            grown_top, grown_left = max(0, top - margin), max(0, left - margin)
            grown = Window(
                grown_top,
                grown_left,
                min(height, top + core.height + margin) - grown_top,
                min(width, left + core.width + margin) - grown_left,
            )
            windows.append((core, grown))
    return windows


def largest_grown_pixels(height: int, width: int, tile: int, margin: int) -> int:
    """Pixels of the largest grown window of :func:`tile_windows`: what one tile's work
    holds in memory at once."""
    return max(grown.pixels for _, grown in tile_windows(height, width, tile, margin))


# --- choosing a tile for one clip, and recovering from running out of memory -----------------

# The window the per-pixel cost is measured on (a tile of this core size, plus its margins).
PROBE_TILE = 128
# Headroom over the measured cost: allocator rounding and fragmentation, and what the sampled
# CPU measurement may miss between two samples.
SAFETY_FACTOR = 1.25


class TileMemoryError(MemoryError):
    """A timestamp does not fit even with the smallest tile."""


def tensor_bytes(*values: object) -> int:
    """Bytes held by the tensors among ``values`` and inside dataclasses/tuples of them."""
    import dataclasses

    import torch

    total = 0
    for value in values:
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif dataclasses.is_dataclass(value):
            total += tensor_bytes(*(getattr(value, f.name) for f in dataclasses.fields(value)))
        elif isinstance(value, tuple | list):
            total += tensor_bytes(*value)
    return total


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device running out of memory (CUDA's or the CPU allocator's)."""
    import torch

    return isinstance(error, torch.OutOfMemoryError | MemoryError) and not isinstance(
        error, TileMemoryError
    )


class TilePlan:
    """The tile size for one clip's timestamps, chosen once and lowered on out-of-memory.

    tile: None chooses automatically (the whole frame when it fits, else the largest tile
    that fits, from the per-pixel cost measured on the first timestamp); 0 never tiles; an
    int >= :data:`MIN_TILE` forces that size. max_memory: bytes the per-timestamp work and
    the features it reads may use (None: what the device has available).
    log: where the automatic choice is reported (once).
    """

    def __init__(self, tile: int | None = None, max_memory: int | None = None, log=None) -> None:
        if tile not in (None, 0):
            check_tile(tile)
        self.requested = tile
        self.max_memory = max_memory
        self.current: int | None = tile or None  # None: the whole frame
        self.chosen = tile is not None
        self.recoveries = 0
        self._log = log

    def synthesize(self, model, pair, t: float):
        """``model.synthesize(pair, t, tile=...)`` with the current tile; on out of memory
        frees what the attempt held and retries with half the tile, down to MIN_TILE, then
        raises :class:`TileMemoryError` saying what to try."""
        from ..memory import release_unused

        if not self.chosen:
            try:
                self.current = self._choose(model, pair, t)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                # Not even the probe fits: start below it and let the retries go lower.
                self.current = PROBE_TILE // 2
                if self._log is not None:
                    self._log.warning(
                        "tiling: out of memory measuring a %d-pixel probe tile; trying %d-pixel "
                        "tiles",
                        PROBE_TILE,
                        self.current,
                    )
            self.chosen = True
        while True:
            try:
                return model.synthesize(pair, t, tile=self.current)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                # The traceback's frames hold the failed attempt's tensors: drop it to free them.
                failed = error.with_traceback(None)
            release_unused(pair.flow_forward.device)
            smaller = self._smaller(pair)
            height, width = pair.flow_forward.shape[-2:]
            if smaller is None:
                raise TileMemoryError(
                    f"out of memory synthesising a {width}x{height} (padded) frame even with "
                    f"{self._describe(self.current)}; try precision='float16' (CUDA) or "
                    "'bfloat16' (CPU), a smaller clip, or a larger max_memory"
                ) from failed
            if self._log is not None:
                self._log.warning(
                    "out of memory with %s; retrying with %d-pixel tiles",
                    self._describe(self.current),
                    smaller,
                )
            self.current = smaller
            self.recoveries += 1

    def _smaller(self, pair) -> int | None:
        if self.requested == 0:
            return None
        height, width = pair.flow_forward.shape[-2:]
        smaller = max(height, width) // 2 if self.current is None else self.current // 2
        return smaller if smaller >= MIN_TILE else None

    def _choose(self, model, pair, t: float) -> int | None:
        device = pair.flow_forward.device
        height, width = pair.flow_forward.shape[-2:]
        per_pixel = measure_pixel_cost(model, pair, t)
        budget = self.budget(device, held=held_bytes(pair))
        if budget is None:
            return None
        tile = choose_tile(height, width, per_pixel * SAFETY_FACTOR, budget)
        if self._log is not None:
            self._log.info(
                "tiling: %.1f KiB per pixel per timestamp measured, %.2f GiB for it; %s",
                per_pixel / 1024,
                budget / 2**30,
                self._describe(tile),
            )
        return tile

    def budget(self, device, held: int) -> int | None:
        """Bytes one timestamp's work may use: the cap less the features it reads (``held``),
        and no more than the device has available. None when neither is known."""
        from ..memory import available_bytes

        available = available_bytes(device)
        capped = None if self.max_memory is None else max(0, self.max_memory - held)
        if available is None:
            return capped
        return available if capped is None else min(available, capped)

    @staticmethod
    def _describe(tile: int | None) -> str:
        return "the whole frame" if tile is None else f"{tile}-pixel tiles"


def choose_tile(height: int, width: int, pixel_cost: float, budget: int) -> int | None:
    """None when the whole height x width frame fits ``budget`` bytes at ``pixel_cost`` bytes
    per pixel, else the largest tile (>= MIN_TILE) whose largest grown window fits; MIN_TILE
    when none does (the out-of-memory recovery has the last word then)."""
    from .synthesis import SYNTHESIS_RADIUS

    if height * width * pixel_cost <= budget:
        return None
    low, high = MIN_TILE, max(height, width)
    if largest_grown_pixels(height, width, low, SYNTHESIS_RADIUS) * pixel_cost > budget:
        return MIN_TILE
    while low < high:  # largest tile that fits; the grown window grows with the tile
        middle = (low + high + 1) // 2
        if largest_grown_pixels(height, width, middle, SYNTHESIS_RADIUS) * pixel_cost <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def measure_pixel_cost(model, pair, t: float) -> float:
    """Peak bytes per pixel of one timestamp's tiled work (warped context, synthesis input,
    the convolutions' outputs), measured on one probe window of ``pair``, beyond the
    whole-frame flows and results it writes into (counted as held, see :func:`held_bytes`).

    Probes on one device take turns (:func:`vsdain.memory.device_lock`): the peak they read
    is the whole process's, so two filters probing at once would count each other's tiles."""
    from ..memory import PeakMemory, device_lock
    from .synthesis import SYNTHESIS_RADIUS

    device = pair.flow_forward.device
    height, width = pair.flow_forward.shape[-2:]
    probe = Window(
        0, 0, min(height, PROBE_TILE + SYNTHESIS_RADIUS), min(width, PROBE_TILE + SYNTHESIS_RADIUS)
    )
    # The projected flows are made under the lock too, so that they are not allocated inside
    # another probe's measurement.
    with device_lock(device):
        flows = model.project_flows(pair, t)
        with PeakMemory(device) as peak:
            model.synthesize_window(pair, t, flows, probe)
    return max(peak.bytes or 0, 1) / probe.pixels


def held_bytes(pair) -> int:
    """What a timestamp's tiles work beside: the pair's features and frames, and the
    whole-frame projected flows, blend and output (2 + 2 + 3 + 3 channels per pixel)."""
    batch, _, height, width = pair.flow_forward.shape
    per_pixel = 10 * pair.flow_forward.element_size()
    return tensor_bytes(pair) + batch * height * width * per_pixel
