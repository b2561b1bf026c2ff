"""Command-line entry point: the ``vsdain`` script and ``python -m vsdain``.

Each sub-command lives in its own module of this package and provides
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, one-line help); modules are imported only when their command runs.
COMMANDS = {
    "info": ("info", "versions, devices, op path and weights that would be used"),
    "download": ("download", "fetch and verify the released DAIN weights"),
    "evaluate": ("evaluate", "PSNR/SSIM/IE over a folder of frame triplets"),
    "train": ("train", "train or fine-tune DAIN on triplets"),
    "bench": ("bench", "time and memory of the filter against the naive path and MVTools"),
    "render": ("render", "a whole video through the filter, in resumable chunks, on many workers"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Only the chosen command's module is imported (and adds its options): a command's
    dependencies never slow down or break another command."""
    parser = argparse.ArgumentParser(
        prog="vsdain", description="Tools around the vsdain VapourSynth filter."
    )
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
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    args.argv = list(argv)  # for messages that repeat the command, e.g. train's resume hint
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(name)s: %(message)s",
    )
    return int(args.module.run(args) or 0)
