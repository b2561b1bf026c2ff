"""vsdain render on shared storage and after damage: attempts write to names no other
machine uses, a finished chunk whose file no longer decodes to its frames is rendered again
(never joined), and a worker that cannot build the graph ends the render without retries.
Scripts painted with numpy (tests/render_helpers.py): no network, seconds per test."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from render_helpers import decoded_frames, painted, write_script

from vsdain.commands import main
from vsdain.render import ChunkError, render
from vsdain.render import state as state_module
from vsdain.render.plan import Chunk
from vsdain.render.state import WorkFolder


def test_attempt_files_differ_across_machines_and_attempts(tmp_path, monkeypatch):
    folder = WorkFolder(tmp_path, ".mp4")
    chunk = Chunk(0, 0, 8)
    monkeypatch.setattr(state_module.os, "getpid", lambda: 4242)  # the same pid on both
    names = []
    for host in ("render-a.example", "render-b.example", "render-b.example"):
        monkeypatch.setattr(state_module.socket, "gethostname", lambda host=host: host)
        names.append(folder.partial_file(chunk).name)
    assert len(set(names)) == 3  # two machines, and two attempts on one of them
    assert names[0].startswith(".partial-chunk-00000-0-8-render-a.example-4242-")
    assert all(name.endswith(".mp4") for name in names)
    monkeypatch.setattr(state_module.socket, "gethostname", lambda: "odd/host name")
    assert "/" not in folder.partial_file(chunk).name


def test_damaged_finished_chunks_are_rendered_again(tmp_path):
    script = write_script(tmp_path / "paint.vpy", length=10)
    work = tmp_path / "work"
    options = {"codec": "ffv1", "chunk_frames": 4, "work_dir": work, "keep_chunks": True}
    first = render(script, tmp_path / "a.mkv", progress=False, **options)
    assert first.chunks == 3
    files = sorted(work.glob("job-*/chunk-*.mp4"))
    assert [path.name.split(".")[0] for path in files] == [
        "chunk-00000-0-4",
        "chunk-00001-4-8",
        "chunk-00002-8-10",
    ]
    # Chunk 0 truncated (an interrupted copy); chunk 1 a valid file of the wrong length.
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    shutil.copyfile(files[2], files[1])

    stream = io.StringIO()
    again = render(script, tmp_path / "b.mkv", stream=stream, **options)
    assert (again.chunks, again.rendered) == (3, 2)
    lines = stream.getvalue().splitlines()
    assert any(
        line.startswith("render: chunk-00000-0-4: chunk-00000-0-4.mp4 does not decode")
        and line.endswith("rendering it again")
        for line in lines
    ), lines
    assert "render: chunk-00001-4-8: chunk-00001-4-8.mp4 decodes to 2 frames, not 4; " in (
        stream.getvalue()
    )
    frames, _ = decoded_frames(tmp_path / "b.mkv")
    assert len(frames) == 10
    assert [n for n, frame in enumerate(frames) if not np.array_equal(frame, painted(n))] == []


GONE_IN_WORKERS = """
import os
import vapoursynth as vs
MARKER = {marker!r}
if os.path.exists(MARKER):
    raise RuntimeError("the source is gone")
open(MARKER, "w").close()
vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=8).set_output()
"""


def test_a_graph_that_cannot_be_built_is_not_retried(tmp_path, capsys):
    # The script runs in the driver, then fails in every worker: as a source that went
    # missing would, the same on every attempt.
    script = tmp_path / "gone.vpy"
    script.write_text(GONE_IN_WORKERS.format(marker=str(tmp_path / "ran")))
    work = tmp_path / "work"
    with pytest.raises(ChunkError, match="not retried") as failure:
        render(script, tmp_path / "out.mkv", codec="ffv1", work_dir=work, progress=False)
    assert "cannot build the graph" in str(failure.value)
    assert "the source is gone" in str(failure.value)
    attempts = list(work.glob("job-*/*.attempts"))
    assert len(attempts) == 1 and len(attempts[0].read_text().split()) == 1

    (tmp_path / "ran").unlink()
    code = main(["render", str(script), str(tmp_path / "out.mkv"), "--codec", "ffv1"])
    assert code == 1
    assert "not retried" in capsys.readouterr().err
