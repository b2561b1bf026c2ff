"""Duplicated frames (anime drawn on twos or threes, film transfers): which source frames
repeat the one before them, and which kept frames feed each output frame.

The detector. Each source frame k gets a score, its change from frame k - 1, from two
measures on a grey thumbnail 48 pixels wide (luma, 0..1 of full range), whose pixels are the
means of blocks of 1/48 of the picture's width:

- ``local``: the largest absolute difference between the two thumbnails. It catches anything
  that moves, down to a small thing on a still background (a mouth, a hand); the blocks are
  large enough to average out most of an encoder's noise;
- ``brightness``: the absolute difference of the two frames' mean luma. It catches a fade,
  which moves every pixel by a code value or two (too little for ``local``) but all the same
  way, while coding noise has no direction and cancels in the mean.

score = max(local, BRIGHTNESS_WEIGHT * brightness). Frame k is a duplicate when its score is
below the threshold; frame 0 and the first frame after a scene cut are always kept. The
weight and the default threshold are measured by ``bench/dedup_threshold.py`` on real footage
in anime cadences re-encoded with x264 (the README gives the figures): at crf 18 to 23 true
duplicates score up to 0.0098 and the dark fade of Big Buck Bunny from 0.0188. Changes smaller
than an encoder's own noise (a near-still shot where a few hundred pixels change by a few code
values) cannot be told from duplicates by any threshold; treating one as a duplicate only
replaces it with an interpolation between its neighbours, which differ from it that little.

What the filter does with the duplicates (the kept-frame mapping) is in :mod:`.plan`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import vapoursynth as vs

# Width of the thumbnail (blocks of 1/48 of the picture's width): of 32, 48 and 64, the one
# whose duplicates and changes overlapped least in the measurement.
THUMBNAIL_WIDTH = 48
# Puts the brightness measure's coding noise on the local one's scale: a fade of one code value
# per frame then scores about twice the noisiest duplicate (measured: 16 to 48 tried).
BRIGHTNESS_WEIGHT = 32.0
# Between the noisiest duplicate (0.0098 at crf 23) and the dark fade's smallest step (0.0188).
DEFAULT_THRESHOLD = 0.012
# Anime holds a drawing for up to four frames ("on fours"); a longer run is a still shot.
DEFAULT_MAX_RUN = 3

SCORE_PROP = "DainDuplicateScore"
BRIGHTNESS_PROP = "DainDuplicateBrightness"
LOCAL_PROP = "DainDuplicateLocal"


def duplicate_score(local: float, brightness: float) -> float:
    """max(local, BRIGHTNESS_WEIGHT * brightness); see the module docstring."""
    return max(local, BRIGHTNESS_WEIGHT * brightness)


# -- the detector ---------------------------------------------------------------------------
def _grey_thumbnail(clip: vs.VideoNode) -> vs.VideoNode:
    import vapoursynth as vs

    width = min(THUMBNAIL_WIDTH, clip.width)
    height = max(1, round(clip.height * width / clip.width))
    # The matrix only sets the luma weights for RGB input; YUV and GRAY keep their luma.
    matrix = {"matrix_s": "709"} if clip.format.color_family == vs.RGB else {}
    return clip.resize.Bilinear(width, height, format=vs.GRAYS, **matrix)


def _previous(clip: vs.VideoNode) -> vs.VideoNode:
    """Frame k is ``clip``'s frame k - 1 (frame 0 is frame 0)."""
    return clip[0] + clip[:-1] if clip.num_frames > 1 else clip


class DuplicateDetector:
    """Finds source frames that repeat the frame before them (see the module docstring).

    threshold: a frame is a duplicate when its score is below this; > 0, default
    DEFAULT_THRESHOLD. Higher finds more duplicates.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = float(threshold)

    def scores(self, clip: vs.VideoNode) -> vs.VideoNode:
        """A small GRAYS clip as long as ``clip``; frame k carries ``DainDuplicateLocal``,
        ``DainDuplicateBrightness`` and ``DainDuplicateScore`` (floats, 0..1 of full range) for
        the change from frame k - 1 to frame k (frame 0: 0)."""
        import vapoursynth as vs

        blocks = _grey_thumbnail(clip).std.PlaneStats()
        before = _previous(blocks)
        local = vs.core.std.Expr([blocks, before], "x y - abs").std.PlaneStats()

        def score_frame(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            out = f[0].copy()
            brightness = abs(f[0].props["PlaneStatsAverage"] - f[1].props["PlaneStatsAverage"])
            largest = f[2].props["PlaneStatsMax"]
            out.props[LOCAL_PROP] = largest
            out.props[BRIGHTNESS_PROP] = brightness
            out.props[SCORE_PROP] = duplicate_score(largest, brightness)
            return out

        return blocks.std.ModifyFrame(clips=[blocks, before, local], selector=score_frame)

    def find_duplicates(self, clip: vs.VideoNode) -> list[int]:
        """Indices of the frames that repeat the one before them (reads the whole clip; scene
        cuts are not looked at)."""
        return [
            k
            for k, frame in enumerate(self.scores(clip).frames(close=True))
            if k > 0 and frame.props[SCORE_PROP] < self.threshold
        ]
