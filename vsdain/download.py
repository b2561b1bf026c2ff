"""Fetching the released DAIN weights: mirrors from ``vsdain/data/manifest.tsv``, resumable HTTP
downloads, and verification before a file is put where the filter will find it.

A download goes to ``<dest>/best.pth.part``. It is renamed to ``best.pth`` only after it
loads with ``weights_only=True`` and matches the DAIN network key for key and shape for
shape (and the size and sha256 the manifest gives, where it gives them). A file that fails is
deleted and the next mirror is tried. An interrupted download leaves the ``.part`` file,
which the next run resumes with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TextIO

from . import __version__
from .cli_hint import command_hint
from .progress import Progress
from .weights import (
    WEIGHTS_DIR_ENV,
    WEIGHTS_FILENAME,
    WeightsError,
    check_layout,
    default_download_dir,
    load_state_dict_file,
)

MANIFEST_FILENAME = "manifest.tsv"
PART_SUFFIX = ".part"

_CHUNK_BYTES = 1 << 20  # for hashing files on disk
# Network reads return whatever has arrived, up to this much: a slow link still shows
# progress and fills the .part file as the bytes come.
_READ_BYTES = 64 << 10
# How a checkpoint starts: torch.save's zip archive, or a legacy pickle (protocol 2+).
_CHECKPOINT_MAGICS = (b"PK\x03\x04", b"\x80")
_SNIFF_BYTES = 4
_LINE_EVERY_SECONDS = 10.0  # plain progress lines at least this often on a slow link
_MB = (1e6, "MB")  # how the progress line shows bytes
_LINE_EVERY_BYTES = 10_000_000  # plain progress lines when the size is unknown
_MAX_BACKOFF_S = 60.0
# 408 Request Timeout, 425 Too Early, 429 Too Many Requests: worth asking again later.
_TRANSIENT_CLIENT_STATUSES = {408, 425, 429}


class DownloadError(RuntimeError):
    """No mirror gave a file that passed verification, or the mirror list is unusable."""


@dataclass(frozen=True)
class Mirror:
    """One known copy of a checkpoint: a line of ``manifest.tsv``.

    size: bytes, None when unknown. sha256: lowercase hex digest, None when unknown.
    """

    filename: str
    url: str
    size: int | None = None
    sha256: str | None = None


def find_manifest() -> Traversable:
    """The mirror list shipped inside the package, ``vsdain/data/manifest.tsv``."""
    return resources.files(__package__).joinpath("data", MANIFEST_FILENAME)


def read_manifest(path: str | os.PathLike[str] | Traversable | None = None) -> list[Mirror]:
    """The mirrors listed in a manifest (default: the packaged one, :func:`find_manifest`),
    in file order.

    Format: one mirror per line, four tab-separated fields (file name, size in bytes,
    sha256, URL), ``-`` for an unknown size or hash; ``#`` starts a comment line.
    """
    if path is None:
        path = find_manifest()
    elif isinstance(path, str | os.PathLike):
        path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DownloadError(
            f"cannot read the list of download mirrors {path}: {error}. Pass a URL with --url "
            "instead."
        ) from error
    mirrors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4:
            raise DownloadError(
                f"{path}:{number}: expected 4 tab-separated fields (file name, size, sha256, "
                f"URL), found {len(fields)}"
            )
        filename, size, sha256, url = fields
        if size != "-" and not size.isdigit():
            raise DownloadError(f"{path}:{number}: size must be a byte count or -, got {size}")
        if sha256 != "-" and (len(sha256) != 64 or not _is_hex(sha256)):
            raise DownloadError(f"{path}:{number}: sha256 must be 64 hex digits or -")
        mirrors.append(
            Mirror(
                filename=filename,
                url=url,
                size=None if size == "-" else int(size),
                sha256=None if sha256 == "-" else sha256.lower(),
            )
        )
    return mirrors


def verify_weights(path: str | os.PathLike[str], mirror: Mirror | None = None) -> str:
    """Check a downloaded checkpoint; return its sha256 (hex).

    Raises :class:`vsdain.weights.WeightsError` when the size or hash differs from what
    ``mirror`` lists, when the file does not load with ``weights_only=True``, or when its
    tensors do not match the DAIN network key for key and shape for shape.
    """
    path = Path(path)
    size = path.stat().st_size
    if mirror is not None and mirror.size is not None and size != mirror.size:
        raise WeightsError(f"{path} is {size:,} bytes; {mirror.url} should give {mirror.size:,}")
    digest = _sha256(path)
    if mirror is not None and mirror.sha256 is not None and digest != mirror.sha256:
        raise WeightsError(f"{path} has sha256 {digest}; {mirror.url} should give {mirror.sha256}")
    check_layout(load_state_dict_file(path))
    return digest


def download_weights(
    dest: str | os.PathLike[str] | None = None,
    mirrors: Sequence[Mirror] | None = None,
    *,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 2.0,
    force: bool = False,
    stream: TextIO | None = None,
) -> Path:
    """Download and verify ``best.pth``; return its path.

    dest: folder to save into (default :func:`vsdain.weights.default_download_dir`).
    mirrors: tried in order (default: the ``best.pth`` lines of the manifest).
    timeout: seconds to wait for a connection or for the next bytes of a response, > 0;
        ``math.inf`` waits for ever.
    retries: further attempts per mirror after a failure that made no progress (timeouts,
        dropped connections, HTTP 5xx); an attempt that received data resumes at once and
        does not count. Missing files (HTTP 4xx), unknown hosts and refused connections
        move on to the next mirror straight away.
    backoff: seconds before the first retry; doubled for each further one, at most 60.
    force: replace an existing ``best.pth`` even if it passes verification.
    stream: where progress and status lines go (default ``sys.stderr``).
    Raises :class:`DownloadError`, whose message says where to put a hand-obtained file.
    """
    if not timeout > 0:  # also refuses NaN
        raise ValueError(f"timeout must be > 0 seconds (or math.inf), got {timeout}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    out = sys.stderr if stream is None else stream
    dest = (Path(dest).expanduser() if dest is not None else default_download_dir()).absolute()
    target = dest / WEIGHTS_FILENAME
    part = target.with_name(target.name + PART_SUFFIX)
    if mirrors is None:
        mirrors = [mirror for mirror in read_manifest() if mirror.filename == WEIGHTS_FILENAME]
    if not mirrors:
        raise DownloadError(f"no mirror to download {WEIGHTS_FILENAME} from")

    broken = None  # why an existing best.pth fails verification; it stays until replaced
    if target.is_file() and not force:
        try:
            verify_weights(target)
        except WeightsError as error:
            broken = error.reason
            out.write(
                f"existing {target} fails verification ({broken}); downloading a new copy, "
                "which replaces it only once it passes\n"
            )
        else:
            out.write(f"{target} is already present and valid; use --force to download again\n")
            return target

    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot create {dest}: {error}") from error

    failures = []
    for mirror in mirrors:
        out.write(f"downloading {mirror.url}\n")
        try:
            digest = _download_from(mirror, part, timeout, retries, backoff, out)
        except _MirrorFailed as error:
            out.write(f"  failed: {error}\n")
            failures.append(f"  {mirror.url}: {error}")
            continue
        os.replace(part, target)
        replaced = " (replacing the file that failed verification)" if broken else ""
        out.write(f"saved {target} ({target.stat().st_size:,} bytes, sha256 {digest}){replaced}\n")
        return target

    kept = (
        f"\nThe existing {target} was left as it was; it fails verification ({broken})."
        if broken
        else ""
    )
    raise DownloadError(
        f"could not download {WEIGHTS_FILENAME} from any mirror:\n"
        + "\n".join(failures)
        + kept
        + f"\nIf you obtain {WEIGHTS_FILENAME} by other means, put it at\n  {target}\n"
        f"(or in the folder named by ${WEIGHTS_DIR_ENV}) and check it with "
        f"`{command_hint('info')}`."
    )


class _MirrorFailed(Exception):
    """This mirror cannot give a verified file; the next one should be tried."""


class _Transient(Exception):
    """An attempt failed in a way that another attempt may not."""


def _download_from(
    mirror: Mirror, part: Path, timeout: float, retries: int, backoff: float, out: TextIO
) -> str:
    if _size(part) and _starts_like(part) is False:
        out.write(f"  {part} does not start like a checkpoint; discarding it\n")
        part.unlink()
    resumed = _size(part) > 0
    _fetch(mirror, part, timeout, retries, backoff, out)
    try:
        return verify_weights(part, mirror)
    except WeightsError as error:
        part.unlink(missing_ok=True)
        if not resumed:
            raise _MirrorFailed(f"rejected the file, which was deleted: {error.reason}") from None
    # The bytes resumed from may have come from another mirror or another file.
    out.write("  the resumed file failed verification; downloading it again from the start\n")
    return _download_from(mirror, part, timeout, retries, backoff, out)


def _fetch(
    mirror: Mirror, part: Path, timeout: float, retries: int, backoff: float, out: TextIO
) -> None:
    failures = 0
    while True:
        size_before = _size(part)
        try:
            _request(mirror, part, timeout, out)
            return
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code} {error.reason}"
            if error.code < 500 and error.code not in _TRANSIENT_CLIENT_STATUSES:
                raise _MirrorFailed(problem) from None
        except urllib.error.URLError as error:
            # No such host, nothing listening, or a URL urllib cannot fetch (its reason is
            # then a string): another attempt seconds later will not help.
            if not isinstance(error.reason, OSError) or isinstance(
                error.reason, (socket.gaierror, ConnectionRefusedError)
            ):
                raise _MirrorFailed(f"cannot connect: {error.reason}") from None
            problem = f"cannot connect: {error.reason}"
        except ValueError as error:  # a malformed URL
            raise _MirrorFailed(str(error)) from None
        except (_Transient, OSError, http.client.HTTPException) as error:
            problem = str(error) or type(error).__name__

        if _size(part) > size_before:
            out.write(f"  {problem}; resuming\n")
            continue
        failures += 1
        if failures > retries:
            attempts = "attempt" if failures == 1 else "attempts"
            raise _MirrorFailed(f"{problem} (gave up after {failures} {attempts})")
        delay = min(backoff * 2 ** (failures - 1), _MAX_BACKOFF_S)
        out.write(f"  {problem}; retrying in {delay:g} s (retry {failures} of {retries})\n")
        time.sleep(delay)


def _request(mirror: Mirror, part: Path, timeout: float, out: TextIO) -> None:
    """One HTTP request, appending to ``part`` when the server honours a resume range. A
    body that cannot be the checkpoint (wrong size, or not starting like one) is refused
    before anything of it is written."""
    url = mirror.url
    offset = _size(part)
    headers = {"User-Agent": f"vsdain/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers),
            # socket timeouts take None, not infinity, for no limit
            timeout=None if math.isinf(timeout) else timeout,
        )
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # 416 Range Not Satisfiable: the .part may already hold the whole file.
        _, total = _parse_content_range(error.headers.get("Content-Range"))
        error.close()
        if total == offset:
            return
        part.unlink()
        raise _Transient("the server refused to resume; starting again") from None

    with response:
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Transient(f"the server resumed at byte {start}, not {offset}")
            _check_size(mirror, total)
            out.write(f"  resuming at {_megabytes(offset)}\n")
            mode = "ab"
            first = b""
        else:
            if offset:
                out.write("  the server cannot resume downloads; starting again\n")
            offset, total = 0, _content_length(response)
            _check_size(mirror, total)
            mode = "wb"
            first = _read_start(response)
        length = _content_length(response)
        # A plain line per tenth (per 10 MB when the size is unknown), and at least every
        # few seconds, where out is no terminal.
        every = total // 10 if total else _LINE_EVERY_BYTES
        with (
            Progress(
                total,
                "download",
                start=offset,
                every=max(every, 1),
                every_seconds=_LINE_EVERY_SECONDS,
                unit=_MB,
                stream=out,
            ) as bar,
            part.open(mode) as file,
        ):
            chunk = first
            while chunk or (chunk := response.read1(_READ_BYTES)):
                file.write(chunk)
                file.flush()
                bar.update(len(chunk))
                chunk = b""
    received = _size(part) - offset
    if length is not None and received < length:
        # http.client returns a short body without complaint when the peer hangs up.
        raise _Transient(f"connection closed after {received:,} of {length:,} bytes")


def _read_start(response: http.client.HTTPResponse) -> bytes:
    """The first bytes of a body, refused unless they start like a checkpoint."""
    start = b""
    while len(start) < _SNIFF_BYTES and (piece := response.read1(_READ_BYTES)):
        start += piece
    if not start.startswith(_CHECKPOINT_MAGICS):
        kind = response.headers.get("Content-Type") or "no content type"
        raise _MirrorFailed(
            f"the server sent something that is not a checkpoint ({kind}, starting "
            f"{_preview(start)}); nothing of it was kept"
        )
    return start


def _check_size(mirror: Mirror, total: int | None) -> None:
    if mirror.size is not None and total is not None and total != mirror.size:
        raise _MirrorFailed(
            f"the server offers {total:,} bytes; {mirror.filename} has {mirror.size:,}; "
            "nothing of it was kept"
        )


def _starts_like(path: Path) -> bool | None:
    """Whether a file starts like a checkpoint; None while it is too short to tell."""
    with path.open("rb") as file:
        start = file.read(_SNIFF_BYTES)
    if len(start) < _SNIFF_BYTES and any(magic.startswith(start) for magic in _CHECKPOINT_MAGICS):
        return None
    return start.startswith(_CHECKPOINT_MAGICS)


def _preview(data: bytes) -> str:
    text = data[:40].decode("utf-8", errors="replace")
    return repr(" ".join(text.split())) if data else "with nothing"


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` or ``bytes */TOTAL`` -> (START, TOTAL); None where absent."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value.removeprefix("bytes ").partition("/")
    start = span.partition("-")[0]
    return (
        int(start) if start.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdefABCDEF" for char in text)
