"""End to end: a .vpy script that uses vsdain.Interpolate, run by ``vspipe -c y4m``.

The two vspipe runs are slow (a fresh Python with PyTorch, the weights loaded, the network
run); the parsing they rely on is checked on its own in the fast tier."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest

# Two source frames at multi=2: source 0, the synthesised frame, source 1, and the tail slot.
WIDTH, HEIGHT, LENGTH, MULTI = 64, 48, 2, 2
# The README's script reads a file; from two frames the source filter cannot tell its rate.
FILM_LENGTH = 3

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


# y4m colour spaces vspipe writes here -> (chroma samples per luma sample, bytes per sample).
Y4M_LAYOUTS = {"444": (2, 1), "420p10": (0.5, 2)}


def split_y4m(stream: bytes) -> tuple[dict[str, str], list[bytes]]:
    header, _, body = stream.partition(b"\n")
    fields = header.decode("ascii").split(" ")
    assert fields[0] == "YUV4MPEG2", f"stdout does not start with a y4m header: {header[:60]!r}"
    params = {field[0]: field[1:] for field in fields[1:]}
    chroma, sample_bytes = Y4M_LAYOUTS[params["C"]]
    frame_size = int((1 + chroma) * int(params["W"]) * int(params["H"]) * sample_bytes)
    frames = []
    while body:
        marker, _, body = body.partition(b"\n")
        assert marker == b"FRAME", f"unexpected bytes in the stream: {marker[:40]!r}"
        frames.append(body[:frame_size])
        assert len(frames[-1]) == frame_size
        body = body[frame_size:]
    return params, frames


def y4m_stream(width: int, height: int, frames: list[bytes]) -> bytes:
    header = f"YUV4MPEG2 W{width} H{height} F48000:1001 Ip A1:1 C444\n".encode()
    return header + b"".join(b"FRAME\n" + frame for frame in frames)


def test_split_y4m_reads_the_header_and_every_frame():
    frames = [bytes([n]) * (3 * 4 * 2) for n in range(3)]
    params, read = split_y4m(y4m_stream(4, 2, frames))
    assert (params["W"], params["H"], params["C"], params["F"]) == ("4", "2", "444", "48000:1001")
    assert read == frames
    with pytest.raises(AssertionError, match="unexpected bytes"):
        split_y4m(y4m_stream(4, 2, frames) + b"junk\n")
    with pytest.raises(AssertionError, match="y4m header"):
        split_y4m(b"Traceback (most recent call last):\n")


@pytest.mark.slow
def test_vspipe_writes_the_interpolated_clip_as_y4m(tmp_path, random_weights):
    weights = random_weights
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
    assert frames[3] == frames[2]
    # Frame 1 is synthesised: neither of its neighbours, the two source frames, passed through.
    assert frames[1] not in (frames[0], frames[2])


# -- the README's encoding chain ---------------------------------------------------------------
README = Path(__file__).resolve().parent.parent / "README.md"
README_SECTION = "### Encoding with vspipe"


def readme_chain() -> tuple[str, list[str]]:
    """The README's script and its vspipe command (the part before the pipe), as written."""
    text = README.read_text()
    assert README_SECTION in text, f"README has no {README_SECTION!r} section"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    command = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1).strip()
    assert command.startswith("vspipe ") and " | ffmpeg " in command, command
    return script, command.split(" | ", 1)[0].split()


def write_film(path: Path, width: int, height: int, length: int) -> None:
    """A small lossless Matroska file of moving ramps at 24 fps, written with PyAV."""
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for n in range(length):
            image = np.stack([(x * 4 + 16 * n) % 256, y * 5 % 256, x * 0 + 128], axis=-1)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_the_readme_has_the_encoding_chain():
    script, command = readme_chain()
    assert "vsdain.Interpolate(" in script and "set_output()" in script
    assert command[:3] == ["vspipe", "-c", "y4m"] and command[-1] == "-"


@pytest.mark.slow
def test_the_readme_encoding_chain_runs(tmp_path, random_weights):
    script, command = readme_chain()
    (tmp_path / "interpolate.vpy").write_text(script)
    write_film(tmp_path / "film.mkv", WIDTH, HEIGHT, FILM_LENGTH)
    assert command[-1] == "-"
    output = tmp_path / "out.y4m"
    environment = dict(os.environ, VSDAIN_WEIGHTS_DIR=str(random_weights.parent))
    done = subprocess.run(
        [vspipe(), *command[1:-1], str(output)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    params, frames = split_y4m(output.read_bytes())
    assert (params["W"], params["H"], params["C"]) == (str(WIDTH), str(HEIGHT), "420p10")
    assert params["F"] == "48:1"
    assert len(frames) == FILM_LENGTH * MULTI
    assert frames[0] != frames[2]
    assert frames[1] not in (frames[0], frames[2])
