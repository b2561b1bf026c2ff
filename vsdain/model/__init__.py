"""The DAIN network and its sub-networks."""

from .dain import DAIN, FrameFeatures, PairFeatures, Synthesis
from .padding import Padding

__all__ = ["DAIN", "FrameFeatures", "Padding", "PairFeatures", "Synthesis"]
