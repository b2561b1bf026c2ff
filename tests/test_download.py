"""Downloading the weights from a local HTTP server: resume, fallback, verification, and
the message when nothing can be downloaded. No test touches the internet."""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from checkpoints import random_state_dict, write_random_checkpoint

from vsdain.commands import download as download_command
from vsdain.download import (
    DownloadError,
    Mirror,
    download_weights,
    find_manifest,
    read_manifest,
)

REPO = Path(__file__).resolve().parent.parent
# Fast retries: the behaviour under test is the same, only the pauses are shorter.
QUICK = {"timeout": 5.0, "retries": 2, "backoff": 0.01}


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 with HTTP Range support.

    Misbehaviour is queued per request: ``cuts`` closes the connection after that many body
    bytes, ``statuses`` answers with that error status instead of the file.
    """

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[dict[str, str]] = []
        self.cuts: list[int] = []
        self.statuses: list[int] = []
        self.ignore_range = False
        # A slow link: after this many body bytes, wait for ``go_on`` before the rest.
        self.pause_after: int | None = None
        self.go_on = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request, client_address):
        pass  # clients that hang up early (refusing a body) are part of the tests


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self):
        server = self.server
        server.requests.append({"path": self.path, **dict(self.headers)})
        if server.statuses:
            self.send_error(server.statuses.pop(0))
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        requested = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if requested and not server.ignore_range:
            start = int(requested[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = memoryview(data)[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cuts:
            body = body[: server.cuts.pop(0)]
        if server.pause_after is not None:
            self.wfile.write(body[: server.pause_after])
            self.wfile.flush()
            server.go_on.wait(timeout=20)
            body = body[server.pause_after :]
        self.wfile.write(body)
        # HTTP/1.0: the connection closes here, early when the body was cut.

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def checkpoint_bytes(random_weights) -> bytes:
    return random_weights.read_bytes()


@pytest.fixture
def server(checkpoint_bytes) -> Iterator[FileServer]:
    server = FileServer()
    server.files["/best.pth"] = checkpoint_bytes
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dest(tmp_path) -> Path:
    return tmp_path / "weights"


def mirror_of(server: FileServer, path: str = "/best.pth", **known) -> Mirror:
    return Mirror("best.pth", server.url(path), **known)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_nothing_left(dest: Path) -> None:
    assert not (dest / "best.pth").exists()
    assert not (dest / "best.pth.part").exists()


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    download_command.add_arguments(parser)
    return download_command.run(parser.parse_args(argv))


# Successful downloads.


def test_full_download_is_verified_and_saved(server, dest, checkpoint_bytes):
    digest = hashlib.sha256(checkpoint_bytes).hexdigest()
    known = {"size": len(checkpoint_bytes), "sha256": digest}
    log = io.StringIO()

    path = download_weights(dest, [mirror_of(server, **known)], stream=log, **QUICK)

    assert path == dest / "best.pth"
    assert path.read_bytes() == checkpoint_bytes
    assert not (dest / "best.pth.part").exists()
    assert len(server.requests) == 1
    assert "Range" not in server.requests[0]
    assert f"sha256 {digest}" in log.getvalue()


def test_an_infinite_timeout_waits_without_a_limit(server, dest, checkpoint_bytes):
    options = {**QUICK, "timeout": math.inf}
    path = download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **options)
    assert path.read_bytes() == checkpoint_bytes


@pytest.mark.parametrize("timeout", [math.nan, 0.0, -1.0])
def test_a_timeout_that_is_not_positive_is_refused(dest, timeout):
    with pytest.raises(ValueError, match="timeout must be > 0"):
        download_weights(dest, [Mirror("best.pth", "http://127.0.0.1:9/")], timeout=timeout)
    assert not dest.exists()


def test_interrupted_download_resumes_with_a_range_request(server, dest, checkpoint_bytes):
    half = len(checkpoint_bytes) // 2
    server.cuts = [half]
    log = io.StringIO()

    path = download_weights(dest, [mirror_of(server)], stream=log, **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert [request.get("Range") for request in server.requests] == [None, f"bytes={half}-"]
    assert f"connection closed after {half:,} of {len(checkpoint_bytes):,} bytes" in log.getvalue()


def test_part_file_from_an_earlier_run_is_resumed(server, dest, checkpoint_bytes):
    third = len(checkpoint_bytes) // 3
    dest.mkdir()
    (dest / "best.pth.part").write_bytes(checkpoint_bytes[:third])

    path = download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert [request.get("Range") for request in server.requests] == [f"bytes={third}-"]


def test_server_ignoring_range_restarts_from_the_beginning(server, dest, checkpoint_bytes):
    server.ignore_range = True
    server.cuts = [len(checkpoint_bytes) // 2]
    log = io.StringIO()

    path = download_weights(dest, [mirror_of(server)], stream=log, **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert len(server.requests) == 2
    assert "Range" in server.requests[1]
    assert "the server cannot resume downloads; starting again" in log.getvalue()


def test_stale_part_file_of_another_file_is_discarded_and_fetched_again(
    server, dest, checkpoint_bytes
):
    dest.mkdir()
    # Starts like a checkpoint (a zip archive), so only verification can tell.
    (dest / "best.pth.part").write_bytes(b"PK\x03\x04" + b"\0" * 996)
    log = io.StringIO()

    path = download_weights(dest, [mirror_of(server)], stream=log, **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert [request.get("Range") for request in server.requests] == ["bytes=1000-", None]
    assert "downloading it again from the start" in log.getvalue()


def test_transient_server_errors_are_retried(server, dest, checkpoint_bytes):
    server.statuses = [503, 503]
    path = download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)
    assert path.read_bytes() == checkpoint_bytes
    assert len(server.requests) == 3


def test_missing_file_on_first_mirror_falls_back_to_the_second(server, dest, checkpoint_bytes):
    log = io.StringIO()
    mirrors = [mirror_of(server, "/gone/best.pth"), mirror_of(server)]

    path = download_weights(dest, mirrors, stream=log, **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert [request["path"] for request in server.requests] == ["/gone/best.pth", "/best.pth"]
    assert "failed: HTTP 404" in log.getvalue()


def test_existing_valid_file_is_kept_unless_forced(server, dest, checkpoint_bytes):
    existing = write_random_checkpoint(dest / "best.pth", seed=2)
    before = existing.read_bytes()

    download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)
    assert server.requests == []
    assert existing.read_bytes() == before

    download_weights(dest, [mirror_of(server)], stream=io.StringIO(), force=True, **QUICK)
    assert len(server.requests) == 1
    assert existing.read_bytes() == checkpoint_bytes


def test_existing_broken_file_is_replaced(server, dest, checkpoint_bytes):
    dest.mkdir()
    (dest / "best.pth").write_bytes(b"not a checkpoint")
    path = download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)
    assert path.read_bytes() == checkpoint_bytes


# Rejected downloads: the file is removed and nothing is left that the filter could load.


def flip_middle_byte(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize(
    ("served", "known", "reason"),
    [
        pytest.param(flip_middle_byte, "sha256", "has sha256", id="corrupted_with_known_hash"),
        pytest.param(lambda data: data[: len(data) // 2], None, "truncated", id="truncated"),
        pytest.param(lambda data: data[:-1], "size", "server offers", id="wrong_size"),
    ],
)
def test_file_failing_verification_is_removed(
    server, dest, checkpoint_bytes, served, known, reason
):
    server.files["/best.pth"] = served(checkpoint_bytes)
    details = {
        None: {},
        "sha256": {"sha256": hashlib.sha256(checkpoint_bytes).hexdigest()},
        "size": {"size": len(checkpoint_bytes)},
    }[known]

    with pytest.raises(DownloadError, match=reason):
        download_weights(dest, [mirror_of(server, **details)], stream=io.StringIO(), **QUICK)
    assert_nothing_left(dest)


def test_checkpoint_with_another_layout_is_removed(server, dest):
    state = random_state_dict(seed=3)
    del state["initScaleNets_filter.0.weight"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    server.files["/best.pth"] = buffer.getvalue()

    with pytest.raises(DownloadError, match=r"1 missing key \(initScaleNets_filter\.0\.weight\)"):
        download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)
    assert_nothing_left(dest)


# Mirrors that answer with something else than the checkpoint.


@pytest.mark.parametrize(
    "body",
    [b"rate limit exceeded", b"<!DOCTYPE html><html><body>Too many requests</body></html>"],
    ids=["text", "html"],
)
def test_a_text_body_is_refused_before_it_is_kept(server, dest, checkpoint_bytes, body):
    server.files["/limited"] = body
    log = io.StringIO()
    mirrors = [mirror_of(server, "/limited"), mirror_of(server)]

    path = download_weights(dest, mirrors, stream=log, **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert "not a checkpoint" in log.getvalue()
    assert "Delete" not in log.getvalue()
    assert [request.get("Range") for request in server.requests] == [None, None]


def test_a_text_body_from_the_only_mirror_leaves_nothing_behind(server, dest):
    server.files["/best.pth"] = b"rate limit exceeded"
    with pytest.raises(DownloadError, match="not a checkpoint") as raised:
        download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)
    assert "Delete" not in str(raised.value)
    assert_nothing_left(dest)


def test_a_body_of_the_wrong_known_size_is_refused_before_it_is_kept(
    server, dest, checkpoint_bytes
):
    mirror = mirror_of(server, size=len(checkpoint_bytes) + 1)
    with pytest.raises(DownloadError, match=f"offers {len(checkpoint_bytes):,} bytes"):
        download_weights(dest, [mirror], stream=io.StringIO(), **QUICK)
    assert_nothing_left(dest)


def test_a_junk_part_file_is_discarded_instead_of_resumed(server, dest, checkpoint_bytes):
    # What an earlier run against a rate-limited mirror used to leave.
    dest.mkdir()
    (dest / "best.pth.part").write_bytes(b"rate limit exceeded")
    log = io.StringIO()

    path = download_weights(dest, [mirror_of(server)], stream=log, **QUICK)

    assert path.read_bytes() == checkpoint_bytes
    assert [request.get("Range") for request in server.requests] == [None]
    assert "does not start like a checkpoint; discarding it" in log.getvalue()


def test_a_resumed_file_failing_verification_is_fetched_again_once_and_deleted(
    server, dest, checkpoint_bytes
):
    dest.mkdir()
    (dest / "best.pth.part").write_bytes(b"PK\x03\x04" + b"\0" * 996)
    server.files["/best.pth"] = checkpoint_bytes[:-100]  # every copy here is short

    with pytest.raises(DownloadError, match="rejected the file, which was deleted") as raised:
        download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)

    assert [request.get("Range") for request in server.requests] == ["bytes=1000-", None]
    assert "Delete" not in str(raised.value)
    assert_nothing_left(dest)


def test_a_broken_existing_file_is_kept_and_reported_when_the_download_fails(server, dest):
    dest.mkdir()
    (dest / "best.pth").write_bytes(b"PK\x03\x04 not really")
    log = io.StringIO()

    with pytest.raises(DownloadError) as raised:
        download_weights(dest, [mirror_of(server, "/gone")], stream=log, **QUICK)

    assert (dest / "best.pth").read_bytes() == b"PK\x03\x04 not really"
    message = str(raised.value)
    assert f"The existing {(dest / 'best.pth').absolute()} was left as it was" in message
    assert "fails verification" in message
    assert "replacing it\n" not in log.getvalue()


def test_a_slow_link_fills_the_part_file_as_bytes_arrive(server, dest, checkpoint_bytes):
    server.pause_after = 200_000  # well under one old 1 MiB read
    part = dest / "best.pth.part"
    done = threading.Event()
    failures = []

    def download():
        try:
            download_weights(dest, [mirror_of(server)], stream=io.StringIO(), **QUICK)
        except Exception as error:
            failures.append(error)
        done.set()

    worker = threading.Thread(target=download)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while _size_of(part) < 200_000 and time.monotonic() < deadline and not done.is_set():
            time.sleep(0.02)
        arrived = _size_of(part)
    finally:
        server.go_on.set()
        worker.join(timeout=60)
    assert arrived == 200_000
    assert failures == []
    assert (dest / "best.pth").read_bytes() == checkpoint_bytes


def _size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# Failures and the command line.


def test_no_network_gives_a_clear_message_and_nonzero_exit(dest, capsys):
    url = f"http://127.0.0.1:{closed_port()}/best.pth"

    code = run_command("--dest", str(dest), "--url", url, "--retries", "0")

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert f"{url}: cannot connect" in err
    assert f"put it at\n  {dest.absolute() / 'best.pth'}\n" in err
    assert_nothing_left(dest)


def test_unresponsive_server_times_out_and_retries(dest):
    with socket.socket() as silent:  # accepts connections (in the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/best.pth"
        log = io.StringIO()
        with pytest.raises(DownloadError, match="gave up after 2 attempts"):
            download_weights(
                dest, [Mirror("best.pth", url)], timeout=0.2, retries=1, backoff=0.01, stream=log
            )
    assert "retrying in" in log.getvalue()


def test_command_reports_progress_on_stderr_only(server, dest, checkpoint_bytes, capsys):
    code = run_command("--dest", str(dest), "--url", server.url("/best.pth"))

    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""
    assert "100%" in err
    assert "MB/s" in err
    assert "\r" not in err  # not a terminal: plain lines
    assert (dest / "best.pth").read_bytes() == checkpoint_bytes


def test_progress_redraws_one_line_on_a_terminal(server, dest):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log = Terminal()
    download_weights(dest, [mirror_of(server)], stream=log, **QUICK)
    assert "\r" in log.getvalue()


# The manifest.


def test_manifest_lists_the_community_mirror_first_and_the_original_host_last():
    mirrors = read_manifest()
    assert [mirror.filename for mirror in mirrors] == ["best.pth", "best.pth"]
    assert mirrors[0].url == (
        "https://raw.githubusercontent.com/BurguerJohn/Dain-App/master/model_weights/best.pth"
    )
    assert mirrors[-1].url == "http://vllab1.ucmerced.edu/~wenbobao/DAIN/best.pth"


def test_manifest_is_read_from_inside_the_package():
    manifest = find_manifest()
    assert Path(str(manifest)) == REPO / "vsdain" / "data" / "manifest.tsv"
    assert read_manifest(manifest) == read_manifest()
    assert not (REPO / "models" / "manifest.tsv").exists()


def test_manifest_fields_are_parsed_and_checked(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    digest = "ab" * 32
    manifest.write_text(
        "# comment\n\nbest.pth\t123\t" + digest + "\thttp://a/best.pth\n"
        "best.pth\t-\t-\thttp://b/best.pth\n"
    )
    assert read_manifest(manifest) == [
        Mirror("best.pth", "http://a/best.pth", size=123, sha256=digest),
        Mirror("best.pth", "http://b/best.pth"),
    ]
    manifest.write_text("best.pth\t-\thttp://a/best.pth\n")
    with pytest.raises(DownloadError, match=r"manifest.tsv:1: expected 4"):
        read_manifest(manifest)
