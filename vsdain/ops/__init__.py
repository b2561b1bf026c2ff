"""DAIN's custom operations: PWC-Net correlation, depth-aware flow projection, adaptive warping.

One module per op (``correlation``, ``projection``, ``warping``), each holding the argument
checks, a pure-PyTorch reference (any device, differentiable), the autograd Function around its
CUDA kernels (``<op>.cu`` beside it, compiled at run time by CuPy), the self-check its kernels
must pass before they are trusted (``SELF_CHECK``) and the public function. Which of the two
runs is decided once per device by :mod:`vsdain.ops.backend`, which imports none of the ops.
"""

from .backend import OPS_ENV, OpPath, OpsBackendError, describe_backend, resolve_op_path
from .correlation import correlation
from .projection import project_flow
from .warping import adaptive_warp

__all__ = [
    "OPS_ENV",
    "OpPath",
    "OpsBackendError",
    "adaptive_warp",
    "correlation",
    "describe_backend",
    "project_flow",
    "resolve_op_path",
]
