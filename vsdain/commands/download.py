"""``vsdain download``: fetch ``best.pth`` and verify it before saving it.

Progress and messages go to stderr; stdout stays empty.
"""

from __future__ import annotations

import argparse
import sys

from . import UsageError, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dest",
        metavar="DIR",
        help="folder to save best.pth in (default: $VSDAIN_WEIGHTS_DIR, else the checkout's "
        "models/ folder, else ~/.cache/vsdain)",
    )
    parser.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help="download from this URL instead of the mirrors in manifest.tsv; repeat to give "
        "several, tried in order",
    )
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=60.0,
        metavar="S",
        help="seconds to wait for a connection or for more data; inf waits for ever "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="N",
        help="further attempts per mirror after a failure, with growing pauses "
        "(default: %(default)d)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="download again even if a valid best.pth is already there",
    )


def run(args: argparse.Namespace) -> int:
    from ..download import DownloadError, Mirror, download_weights
    from ..weights import WEIGHTS_FILENAME

    if args.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {args.retries}")
    mirrors = [Mirror(WEIGHTS_FILENAME, url) for url in args.url] if args.url else None
    try:
        download_weights(
            args.dest,
            mirrors,
            timeout=args.timeout,
            retries=args.retries,
            force=args.force,
            stream=sys.stderr,
        )
    except DownloadError as error:
        print(f"vsdain download: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "vsdain download: interrupted; run the same command again to resume where it stopped",
            file=sys.stderr,
        )
        return 130
    return 0
