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


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["download", "--timeout", "nan"], "vsdain download: argument --timeout: must be > 0"),
        (["download", "--timeout", "0"], "vsdain download: argument --timeout: must be > 0"),
        (["download", "--timeout", "soon"], "vsdain download: argument --timeout: expected"),
        (["download", "--retries", "-1"], "vsdain download: --retries must be >= 0, got -1"),
        (["download", "--no-such-option"], "vsdain: unrecognized arguments: --no-such-option"),
        (["trian"], "vsdain: argument COMMAND: invalid choice: 'trian'"),
        (["train", "data", "--out", "o", "--depth", "deep"], "vsdain train: argument --depth"),
        (["train", "data", "--out", "o", "--factor", "nan"], "vsdain train: --factor must be"),
        (["train", "data", "--out", "o", "--steps", "0"], "vsdain train: --steps must be >= 1"),
        (["evaluate", "data", "--layout", "ucf"], "vsdain evaluate: argument --layout"),
        (
            ["evaluate", "d", "--layout", "ucf101", "--out", "o", "--worst", "-1"],
            "vsdain evaluate: --worst must be >= 0, got -1",
        ),
        (["bench", "--device", "tpu"], "vsdain bench: --device"),
        (["bench", "--clip", "/nonexistent.mkv"], "vsdain bench: --clip /nonexistent.mkv: no"),
    ],
)
def test_usage_errors_exit_2_with_the_command_named(argv, message, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    first, *rest = err.splitlines()
    assert first.startswith(message)
    assert rest == [
        f"(`{command_hint(*first.split(':')[0].split()[1:], '--help')}` lists the options)"
    ]


def test_choices_and_defaults_come_from_the_recipe_and_the_datasets():
    from vsdain.evaluation.datasets import LAYOUTS
    from vsdain.training import recipe
    from vsdain.training.config import TrainingConfig

    train = build_command_parser("train")
    actions = {action.dest: action for action in train._actions}
    assert tuple(actions["depth"].choices) == recipe.DEPTH_MODES
    assert tuple(actions["schedule"].choices) == recipe.SCHEDULES
    assert tuple(actions["lr_preset"].choices) == tuple(recipe.LR_PRESETS)
    assert tuple(actions["layout"].choices) == LAYOUTS
    assert actions["factor"].default == recipe.PLATEAU_FACTOR
    assert actions["patience"].default == recipe.PLATEAU_PATIENCE
    for name in ("layout", "depth", "lr_preset", "schedule", "decay_epoch"):
        assert actions[name].default == getattr(TrainingConfig, name), name
    evaluate = build_command_parser("evaluate")
    layout = next(action for action in evaluate._actions if action.dest == "layout")
    assert tuple(layout.choices) == LAYOUTS


def build_command_parser(name: str):
    from vsdain.commands import build_parser

    parser = build_parser([name])
    return parser._subparsers._group_actions[0].choices[name]


def test_timeout_inf_waits_without_a_limit(tmp_path, monkeypatch, capsys):
    import vsdain.download

    seen = {}

    def fake_download(dest, mirrors, **options):
        seen.update(options)
        return tmp_path / "best.pth"

    monkeypatch.setattr(vsdain.download, "download_weights", fake_download)
    assert main(["download", "--dest", str(tmp_path), "--timeout", "inf"]) == 0
    assert seen["timeout"] == float("inf")
