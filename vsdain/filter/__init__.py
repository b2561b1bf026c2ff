"""The VapourSynth layer: the ``Interpolate`` filter and its parts (exact timing, scene-cut
detection, frame conversion, the feature cache). Needs ``vapoursynth``; the network does not."""

from .interpolate import Interpolate
from .scenecut import SceneCutDetector

__all__ = ["Interpolate", "SceneCutDetector"]
