"""tools/demo.py (behind tools/demo.sh): its help, its argument checks, and the labelled
before/after picture of the random-weights smoke test. The vspipe run itself is covered by
tests/test_filter_vspipe.py."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "tools" / "demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMO), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_names_tools_demo_sh_and_reads_as_plain_text():
    done = run_demo("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tools/demo.sh ")
    assert "``" not in done.stdout
    assert "--random-weights" in done.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frames", "1"], "--frames must be >= 2, got 1"),
        (["--multi", "1"], "--multi must be >= 2, got 1"),
        (["--width", "101"], "--width must be even"),
        (["--clip", "/nonexistent/clip.mp4"], "clip not found: /nonexistent/clip.mp4"),
    ],
)
def test_bad_arguments_stop_before_any_work(argv, message, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    done = run_demo("--clip", str(clip), *argv, "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert f"demo: {message}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_missing_weights_suggest_commands_that_run_from_the_current_folder(tmp_path):
    from vsdain.cli_hint import command_hint

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    done = subprocess.run(
        [sys.executable, str(DEMO), "--clip", str(clip), "--weights", str(tmp_path / "none")],
        cwd=REPO / "tools",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert f"`{command_hint('download')}`" in done.stderr
    assert "./demo.sh --random-weights" in done.stderr


def write_y4m(path: Path, frames: int, width: int = 32, height: int = 16) -> None:
    header = f"YUV4MPEG2 W{width} H{height} F24:1 Ip A1:1 C444\n".encode()
    with path.open("wb") as file:
        file.write(header)
        for index in range(frames):
            file.write(b"FRAME\n")
            file.write(
                bytes([40 + 60 * index]) * (width * height) + bytes([128]) * (2 * width * height)
            )


def test_random_weights_picture_carries_the_two_line_banner(tmp_path):
    from PIL import Image

    demo = load_demo()
    video = tmp_path / "interpolated.y4m"
    write_y4m(video, frames=3)
    args = argparse.Namespace(multi=2, random_weights=True, out=tmp_path)

    picture = demo.write_before_after(video, args)

    with Image.open(picture) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (16 + 40, 3 * 32, 3)
    banner = pixels[:40]
    text = banner[..., 1] > 100  # the banner is dark red; its text is white
    # One line of text (the label) in the top half, a second (the near-black note) below.
    assert text[:20].any() and text[20:].any()
    assert "near-black middle frame" in demo.SMOKE_NOTE
