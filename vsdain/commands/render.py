"""``vsdain render SOURCE OUTPUT [options]``: a whole video through vsdain.Interpolate (or a
.vpy script's output) into a file, in chunks that resume after an interruption, on one or
many workers. Progress and the summary go to stderr; nothing to stdout."""

from __future__ import annotations

import argparse
import re
import sys

from ..render.encode import DEFAULT_CODEC
from ..render.job import DEFAULT_RETRIES
from ..render.options import filter_options

NAME = "vsdain render"
INTERRUPTED = 130  # the shell's code for SIGINT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="a video file, or a .vpy script")
    parser.add_argument(
        "output", metavar="OUTPUT", help="the file to write; .mkv or .mp4 picks the container"
    )
    rate = parser.add_argument_group(
        "interpolation (a video file SOURCE; the filter's options, see vsdain.Interpolate)"
    )
    rate.add_argument(
        "--fps",
        metavar="NUM[/DEN]",
        help="an exact output rate instead of --multi, e.g. 60000/1001 (needed for a "
        "variable-frame-rate SOURCE)",
    )
    for option in filter_options():
        if option.parse is None:
            rate.add_argument(
                option.flag,
                dest=option.name,
                action="store_const",
                const=option.switch,
                default=argparse.SUPPRESS,
                help=option.help,
            )
        else:
            rate.add_argument(
                option.flag,
                dest=option.name,
                type=option.parse,
                default=argparse.SUPPRESS,
                metavar=option.metavar,
                help=option.help,
            )
    source = parser.add_argument_group("source")
    source.add_argument("--width", type=int, help="resize the source first (previews)")
    source.add_argument("--height", type=int, help="resize the source first (previews)")
    source.add_argument("--first", type=int, default=0, help="first source frame (default 0)")
    source.add_argument("--frames", type=int, help="source frames to render (default: all)")
    encoding = parser.add_argument_group("encoding")
    encoding.add_argument(
        "--codec",
        default=DEFAULT_CODEC,
        help="FFmpeg encoder (default %(default)s at crf 16, preset medium; ffv1 is lossless)",
    )
    encoding.add_argument(
        "--codec-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an encoder option, repeatable (replaces the defaults), e.g. crf=18 preset=slow",
    )
    work = parser.add_argument_group("chunks and workers")
    work.add_argument("--chunk-frames", type=int, help="output frames per chunk (default 4 s)")
    work.add_argument("--workers", type=int, default=1, help="chunks at once (default 1)")
    work.add_argument(
        "--address", help="join a Ray cluster: host:port of `ray start --head`, or auto"
    )
    work.add_argument("--threads", type=int, help="CPU threads per worker (default: split)")
    work.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help="further attempts per failed chunk (default %(default)s)",
    )
    work.add_argument("--work-dir", help="chunk folder (default: .OUTPUT.vsdain beside OUTPUT)")
    work.add_argument("--keep-chunks", action="store_true", help="keep chunk files afterwards")


def run(args: argparse.Namespace) -> int:
    try:
        fps_num, fps_den = _fps(args.fps)
        options = _codec_options(args.codec_option)
    except ValueError as problem:
        return _usage_error(str(problem))
    from ..render import ChunkError, RenderError, render

    filter_keywords = {
        option.name: getattr(args, option.name)
        for option in filter_options()
        if hasattr(args, option.name)
    }
    if fps_num is not None:
        filter_keywords |= {"fps_num": fps_num, "fps_den": fps_den}
    try:
        render(
            args.source,
            args.output,
            width=args.width,
            height=args.height,
            first=args.first,
            frames=args.frames,
            codec=args.codec,
            codec_options=options,
            chunk_frames=args.chunk_frames,
            workers=args.workers,
            address=args.address,
            retries=args.retries,
            threads=args.threads,
            work_dir=args.work_dir,
            keep_chunks=args.keep_chunks,
            **filter_keywords,
        )
    except RenderError as problem:
        return _usage_error(_as_option(str(problem)))
    except ChunkError as failure:
        print(f"{NAME}: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{NAME}: interrupted; run the same command again to render only the chunks "
            "that are not done",
            file=sys.stderr,
        )
        return INTERRUPTED
    return 0


def _fps(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    num, _, den = text.partition("/")
    try:
        values = int(num), int(den or 1)
    except ValueError:
        raise ValueError(f"--fps must be NUM or NUM/DEN, e.g. 60000/1001, got {text!r}") from None
    if min(values) <= 0:
        raise ValueError(f"--fps must be positive, got {text!r}")
    return values


def _codec_options(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"--codec-option must be KEY=VALUE, e.g. crf=18, got {pair!r}")
        options[key] = value
    return options


# The library names arguments as keywords; the command's user typed options.
OPTION_NAMES = {
    "workers": "--workers",
    "retries": "--retries",
    "first": "--first",
    "frames": "--frames",
    "chunk_frames": "--chunk-frames",
    "threads": "--threads",
    "width": "--width",
    "height": "--height",
    "codec": "--codec",
    "address": "--address",
    "fps_num": "--fps",
    "fps_den": "--fps",
    "fps_num/fps_den": "--fps",
}
RATE_KEYWORDS = "fps_num/fps_den"  # how the render's own messages name --fps
FILTER_PREFIX = "Interpolate: "  # how the filter's checks begin their messages


def _as_option(message: str) -> str:
    """A message about keywords, as one about the command's options: its leading keyword
    becomes the option, and in the filter's messages (``Interpolate: ...``, the prefix
    dropped) so do every ``keyword=value`` and every keyword with an underscore (no common
    word has one; the render's own messages may hold paths, so they are left alone)."""
    switches = {option.name: option for option in filter_options() if option.parse is None}
    flags = {option.name: option.flag for option in filter_options()} | OPTION_NAMES
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    from_filter = message.startswith(FILTER_PREFIX)
    message = message.removeprefix(FILTER_PREFIX)

    def assignment(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2).strip("'\"")
        if name in switches:
            option = switches[name]
            return option.flag if value == str(option.switch) else match.group(0)
        return f"{flags[name]} {value}"

    if from_filter:
        message = re.sub(rf"\b({names})=('[^']*'|\"[^\"]*\"|[^\s;,)]+)", assignment, message)
    leading = re.match(rf"({names})\b(?![=/])", message)
    if leading:
        message = flags[leading.group(1)] + message[leading.end() :]
    if not from_filter:
        return message.replace(RATE_KEYWORDS, OPTION_NAMES[RATE_KEYWORDS])
    underscored = "|".join(
        re.escape(name) for name in sorted(flags, key=len, reverse=True) if "_" in name
    )
    return re.sub(rf"(?<![-\w/.])({underscored})\b", lambda m: flags[m.group(1)], message)


def _usage_error(message: str) -> int:
    """Bad input: ``vsdain render: message`` on stderr and exit code 2, through the
    commands' shared UsageError."""
    from . import UsageError

    raise UsageError(message)
