"""The commands that messages tell the user to run: ``vsdain ...`` when that script is this
installation's, else the running interpreter with ``-m vsdain``; both spellings work."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vsdain import cli_hint
from vsdain.cli_hint import command_hint

INTERPRETER = os.path.abspath(sys.executable)


def script_on_path(monkeypatch, script: Path | None) -> None:
    monkeypatch.setattr(
        cli_hint.shutil, "which", lambda name: None if script is None else str(script)
    )


def test_the_script_beside_the_interpreter_is_used_by_name(monkeypatch):
    script_on_path(monkeypatch, Path(sys.executable).with_name("vsdain"))
    assert command_hint("download") == "vsdain download"


def test_the_script_in_the_environment_bin_folder_is_used_by_name(monkeypatch):
    script_on_path(monkeypatch, Path(sys.prefix) / "bin" / "vsdain")
    assert command_hint("info") == "vsdain info"


@pytest.mark.parametrize("elsewhere", [True, False], ids=["other_installation", "not_on_path"])
def test_otherwise_the_running_interpreter_is_named(monkeypatch, tmp_path, elsewhere):
    script_on_path(monkeypatch, tmp_path / "other-venv" / "bin" / "vsdain" if elsewhere else None)
    hint = command_hint("download")
    assert shlex.split(hint) == [INTERPRETER, "-m", "vsdain", "download"]


def test_words_are_quoted_for_the_shell(monkeypatch):
    script_on_path(monkeypatch, None)
    hint = command_hint("train", "my clips", "--out", Path("runs/a b"))
    assert shlex.split(hint)[-4:] == ["train", "my clips", "--out", "runs/a b"]
    assert "'my clips'" in hint


@pytest.mark.parametrize(
    "program",
    [
        pytest.param([sys.executable, "-m", "vsdain"], id="python_-m_vsdain"),
        pytest.param([str(Path(sys.executable).with_name("vsdain"))], id="vsdain_script"),
    ],
)
def test_both_spellings_run_and_call_themselves_vsdain(program):
    done = subprocess.run(
        [*program, "download", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: vsdain download ")
