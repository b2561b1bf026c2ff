"""The command line as a whole: one program name, the commands its messages suggest, and one
way of reporting usage errors (exit 2, ``vsdain COMMAND: ...`` on stderr)."""

from __future__ import annotations

import argparse
import shlex

import pytest

import vsdain.training
from vsdain.cli_hint import command_hint
from vsdain.commands import main


def test_interrupted_training_prints_a_resume_command_that_replaces_the_start(
    tmp_path, monkeypatch, capsys
):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(vsdain.training, "train", interrupted)
    out = tmp_path / "my run"
    argv = ["train", str(tmp_path), "--layout", "triplets", "--out", str(out), "--from-scr"]

    assert main([*argv, "--steps", "3"]) == 130

    err = capsys.readouterr().err
    expected = command_hint(*argv[:-1], "--steps", "3", "--resume", str(out / "last.pth"))
    assert f"continue with `{expected}`" in err
    resumed = shlex.split(expected)
    assert "--from-scr" not in resumed
    assert resumed.count("--resume") == 1


@pytest.mark.parametrize(
    "start",
    [["--weights", "w.pth"], ["--weights=w.pth"], ["--resume", "old/last.pth"], ["--resu=x"]],
)
def test_resume_command_drops_every_spelling_of_the_start_option(start):
    from vsdain.commands.train import resume_command

    args = argparse.Namespace(
        data="data",
        out="runs/a",
        argv=["-v", "train", "data", *start, "--out", "runs/a", "--seed", "4"],
    )
    words = shlex.split(resume_command(args))
    assert words[words.index("train") - 1 :] == [
        "-v", "train", "data", "--out", "runs/a", "--seed", "4", "--resume", "runs/a/last.pth",
    ]  # fmt: skip
