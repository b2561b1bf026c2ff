"""vsdain: DAIN (Depth-Aware Video Frame Interpolation) for VapourSynth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .filter import Interpolate, SceneCutDetector
    from .model import DAIN
    from .weights import load_model

__all__ = ["DAIN", "Interpolate", "SceneCutDetector", "__version__", "load_model"]

# Imported on first use, so `import vsdain` (and the command line) stays quick and works
# without VapourSynth installed.
_LAZY = {
    "Interpolate": ".filter",
    "SceneCutDetector": ".filter",
    "DAIN": ".model",
    "load_model": ".weights",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
