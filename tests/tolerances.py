"""The one tolerance table for numerical comparisons in the tests, keyed by dtype.

Loosen an entry only with a comment saying which comparison needs it and why.
"""

from __future__ import annotations

import torch

TOLERANCES: dict[torch.dtype, dict[str, float]] = {
    torch.float64: {"rtol": 1e-10, "atol": 1e-10},
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.float16: {"rtol": 1e-2, "atol": 1e-2},
}


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype | None = None, **override
) -> None:
    """``torch.testing.assert_close`` with the tolerances of ``dtype`` (default: that of
    ``actual``). ``override`` replaces table entries or passes other options through, e.g.
    ``check_dtype=False`` when comparing against a float64 reference."""
    key = actual.dtype if dtype is None else dtype
    if key not in TOLERANCES:
        raise KeyError(f"no tolerance for {key}; add one to tests/tolerances.py")
    torch.testing.assert_close(actual, expected, **{**TOLERANCES[key], **override})


def assert_gradients_close(actual, expected, dtype: torch.dtype) -> None:
    """Lists of gradients (None where an input has none) compared pairwise with the
    tolerances of ``dtype``; a message names the input."""
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if want is None:
            assert got is None, f"input {index}: expected no gradient"
            continue
        assert_close(got, want, dtype=dtype, msg=lambda text, index=index: f"input {index}: {text}")
