"""vsdain: DAIN (Depth-Aware Video Frame Interpolation) for VapourSynth."""

__version__ = "0.1.0"
