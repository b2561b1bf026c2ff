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
