"""End to end: a .vpy script that uses vsdain.Interpolate, run by ``vspipe -c y4m``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from checkpoints import write_random_checkpoint

WIDTH, HEIGHT, LENGTH, MULTI = 64, 48, 3, 2

SCRIPT = textwrap.dedent(
    f"""
    import numpy as np
    import vapoursynth as vs

    import vsdain

    core = vs.core
    y, x = np.mgrid[0:{HEIGHT}, 0:{WIDTH}]
    blank = core.std.BlankClip(
        format=vs.RGBS, width={WIDTH}, height={HEIGHT}, length={LENGTH}, fpsnum=24000, fpsden=1001
    )

    def moving(n, f):
        out = f.copy()
        images = [((x + 4 * n) % {WIDTH}) / {WIDTH}, y / {HEIGHT}, x * 0 + 0.5]
        for plane, image in enumerate(images):
            np.copyto(np.asarray(out[plane]), image, casting="same_kind")
        return out

    clip = blank.std.ModifyFrame(blank, moving)
    clip = vsdain.Interpolate(clip, {MULTI}, weights=weights, device="cpu")
    clip.resize.Bicubic(format=vs.YUV444P8, matrix_s="709").set_output()
    """
)


def vspipe() -> str:
    beside_python = Path(sys.executable).with_name("vspipe")
    found = str(beside_python) if beside_python.is_file() else shutil.which("vspipe")
    if found is None:
        # The vapoursynth wheel installs vspipe; its absence is a broken install, not a reason
        # to skip the end-to-end test.
        pytest.fail("vspipe is not installed beside this Python or on PATH")
    return found


def split_y4m(stream: bytes) -> tuple[dict[str, str], list[bytes]]:
    header, _, body = stream.partition(b"\n")
    fields = header.decode("ascii").split(" ")
    assert fields[0] == "YUV4MPEG2", f"stdout does not start with a y4m header: {header[:60]!r}"
    params = {field[0]: field[1:] for field in fields[1:]}
    frame_size = 3 * int(params["W"]) * int(params["H"])
    frames = []
    while body:
        marker, _, body = body.partition(b"\n")
        assert marker == b"FRAME", f"unexpected bytes in the stream: {marker[:40]!r}"
        frames.append(body[:frame_size])
        assert len(frames[-1]) == frame_size
        body = body[frame_size:]
    return params, frames


def test_vspipe_writes_the_interpolated_clip_as_y4m(tmp_path):
    weights = write_random_checkpoint(tmp_path / "best.pth", seed=1)
    script = tmp_path / "interpolate.vpy"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [vspipe(), "-c", "y4m", "-a", f"weights={weights}", str(script), "-"],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    params, frames = split_y4m(done.stdout)
    assert (params["W"], params["H"], params["C"]) == (str(WIDTH), str(HEIGHT), "444")
    assert params["F"] == "48000:1001"
    assert len(frames) == LENGTH * MULTI
    # Source frames pass through unchanged, so 0 and 2 (sources 0 and 1) differ, and the
    # tail slot repeats the last source frame.
    assert frames[0] != frames[2]
    assert frames[4] == frames[5]
