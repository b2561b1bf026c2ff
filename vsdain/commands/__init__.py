"""Command-line entry point: the ``vsdain`` script and ``python -m vsdain``.

Each sub-command lives in its own module of this package and provides
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). A command refuses bad
input by raising :class:`UsageError`; :func:`main` turns it, like argparse's own complaints,
into ``vsdain COMMAND: message`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys

PROG = "vsdain"
USAGE_EXIT_CODE = 2

# name -> (module, one-line help); modules are imported only when their command runs.
COMMANDS = {
    "info": ("info", "versions, devices, op path and weights that would be used"),
    "download": ("download", "fetch and verify the released DAIN weights"),
    "evaluate": ("evaluate", "PSNR/SSIM/IE over a folder of frame triplets"),
    "train": ("train", "train or fine-tune DAIN on triplets"),
    "bench": ("bench", "time and memory of the filter against the naive path and MVTools"),
    "render": ("render", "a whole video through the filter, in resumable chunks, on many workers"),
}


class UsageError(Exception):
    """A bad argument: reported as ``vsdain COMMAND: message`` with exit code 2.

    prog: the program and command the message is about (``"vsdain train"``); None for the
    command being run.
    """

    def __init__(self, message: str, *, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """Reports its errors as :class:`UsageError`, so they read like the commands' own."""

    def error(self, message: str):
        raise UsageError(message, prog=self.prog)


def seconds(text: str) -> float:
    """argparse type of a time limit: a positive number of seconds, ``inf`` for none."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if math.isnan(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds (or inf), got {text!r}")
    return value


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Only the chosen command's module is imported (and adds its options): a command's
    dependencies never slow down or break another command."""
    parser = _Parser(prog=PROG, description="Tools around the vsdain VapourSynth filter.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((word for word in argv if word in COMMANDS), None)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"{__name__}.{module_name}")
            module.add_arguments(command_parser)
            command_parser.set_defaults(module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (2 for a usage error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if word in COMMANDS), None)
    try:
        args = build_parser(argv).parse_args(argv)
        args.argv = argv  # for messages that repeat the command, e.g. train's resume hint
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(name)s: %(message)s",
        )
        return int(args.module.run(args) or 0)
    except UsageError as error:
        prog = error.prog or (f"{PROG} {command}" if command else PROG)
        print(f"{prog}: {error}", file=sys.stderr)
        from ..cli_hint import command_hint

        print(f"(`{command_hint(*prog.split()[1:], '--help')}` lists the options)", file=sys.stderr)
        return USAGE_EXIT_CODE
