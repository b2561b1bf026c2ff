"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real frames and clips beside the checkout; tests using it skip only where it is
    absent (a user's machine), never in CI here."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real evaluation data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def random_dain():
    """A DAIN network in eval mode with the reference initialisation and a fixed seed.
    Random weights: outputs are checked for structure and exactness, never for quality."""
    from vsdain.model import DAIN

    torch.manual_seed(1234)
    return DAIN().eval()
