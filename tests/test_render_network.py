"""vsdain render through the real network (random weights, CPU, 64x48): a render with
``dedup=True`` of a clip on twos gives the same frames as a script doing
``Interpolate(clip, dedup=True)`` rendered the same way, and its chunks share one loaded
network. Every test is bounded by an alarm."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from render_helpers import decoded_pictures, time_limited, write_video, yuv420p

from vsdain import weights as weights_module
from vsdain.render import render

TEST_SECONDS = 300


@pytest.fixture(autouse=True)
def time_limit():
    with time_limited(TEST_SECONDS):
        yield


def on_twos(tmp_path: Path, drawings: int = 3) -> Path:
    """A lossless 24 fps clip of ``drawings`` textures moving 3 pixels a drawing, each held
    for two frames (anime on twos)."""
    texture = np.random.default_rng(11).integers(16, 236, (48, 96))
    pictures = []
    for drawing in range(drawings):
        picture = yuv420p(texture[:, 3 * drawing : 3 * drawing + 64])
        pictures += [picture, picture]
    return write_video(tmp_path / "twos.mkv", pictures, rate=Fraction(24))


@pytest.mark.slow  # the random network over a whole clip, twice
def test_dedup_render_equals_the_filter_in_a_script(tmp_path, random_weights, monkeypatch):
    source = on_twos(tmp_path)
    script = tmp_path / "dedup.vpy"
    # matrix 170m: what render assumes for an unlabelled file under 600 lines.
    script.write_text(
        "import vapoursynth as vs\n"
        "import vsdain\n"
        f"clip = vs.core.bs.VideoSource({str(source)!r})\n"
        f"vsdain.Interpolate(clip, dedup=True, weights={str(random_weights)!r}, "
        "device='cpu', matrix='170m').set_output()\n"
    )
    loads = []
    real_load = weights_module.load_model

    def counted(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(weights_module, "load_model", counted)
    common = {"codec": "ffv1", "chunk_frames": 5, "progress": False}
    rendered = render(
        source, tmp_path / "render.mkv", dedup=True, weights=random_weights, device="cpu", **common
    )
    assert (rendered.frames, rendered.chunks) == (12, 3)
    assert len(loads) == 1  # the driver loads nothing; the three chunks share one network

    render(script, tmp_path / "script.mkv", **common)
    ours = decoded_pictures(tmp_path / "render.mkv")
    theirs = decoded_pictures(tmp_path / "script.mkv")
    assert len(ours) == len(theirs) == 12
    assert [n for n in range(12) if not np.array_equal(ours[n], theirs[n])] == []
    # Dedup ran: output frame 2 sits on source frame 1, a repeat of frame 0, and is
    # synthesised between the drawings 0 and 2 instead of repeating frame 0.
    source_pictures = decoded_pictures(source)
    assert np.array_equal(ours[0], source_pictures[0])
    assert not np.array_equal(ours[2], source_pictures[1])
