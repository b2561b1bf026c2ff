"""The work folder of a render: which chunks are done, and what produced them.

Everything that decides the output's bytes (the source's or script's identity, every graph
and encoder setting, the chunk plan, vsdain's version) is hashed into the job key, and the
job's files live in ``<work root>/job-<key>/``: a re-run with the same command finds its
finished chunks there, and a changed script or setting gets a fresh folder, so stale chunks
are never reused.

A chunk is done when ``<chunk name><suffix>`` exists: workers encode into a temporary name
unique to the attempt (host, process and a random part, so that workers on two machines
sharing the folder never write into one file), check the decoded frame count, and only then
rename (atomic on one file system). A re-run decodes the chunks done before it again, and
renders again one that no longer decodes to its frames (a file truncated or damaged since).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
import uuid
from pathlib import Path

import av

from .. import __version__
from .encode import count_frames
from .plan import Chunk

KEY_LENGTH = 16  # hex digits of the SHA-256 kept in the folder name
# Hashing a whole film would take minutes; its size, both ends and mtime identify it.
SAMPLE_BYTES = 1 << 20


def file_identity(path: str | os.PathLike[str], *, whole: bool = False) -> dict[str, object]:
    """Path, size, modification time and a hash of the content (all of it with ``whole``,
    else the first and last MiB)."""
    path = Path(path).resolve()
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if whole or stat.st_size <= 2 * SAMPLE_BYTES:
            digest.update(handle.read())
        else:
            digest.update(handle.read(SAMPLE_BYTES))
            handle.seek(-SAMPLE_BYTES, os.SEEK_END)
            digest.update(handle.read(SAMPLE_BYTES))
    return {
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": digest.hexdigest(),
    }


def attempt_token() -> str:
    """A name part no other attempt, on this machine or another, gets: host, process id and
    a random part (process ids repeat across machines and after restarts)."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def job_key(identity: dict[str, object]) -> str:
    text = json.dumps({"vsdain": __version__, **identity}, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def job_folder(root: str | os.PathLike[str], key: str, suffix: str) -> WorkFolder:
    return WorkFolder(Path(root) / f"job-{key}", suffix)


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


class WorkFolder:
    """A job's folder (``<work root>/job-<key>/``, see :func:`job_folder`) and the names of
    a chunk's files in it. Plain data: it travels to the workers."""

    def __init__(self, path: str | os.PathLike[str], suffix: str) -> None:
        self.path = Path(path)
        self.suffix = suffix

    def create(self, identity: dict[str, object]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        record = self.path / "job.json"
        if not record.exists():
            temporary = record.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(identity, indent=2, sort_keys=True, default=_plain))
            temporary.replace(record)

    def chunk_file(self, chunk: Chunk) -> Path:
        return self.path / f"{chunk.name}{self.suffix}"

    def partial_file(self, chunk: Chunk) -> Path:
        """Where an attempt encodes; a new name at each call (see :func:`attempt_token`),
        so a retried chunk never writes into the file of an attempt that may still be
        running, here or on another machine."""
        return self.path / f".partial-{chunk.name}-{attempt_token()}{self.suffix}"

    def progress_file(self, chunk: Chunk) -> Path:
        """Frames the current attempt has encoded, as text, rewritten as it goes."""
        return self.path / f"{chunk.name}.progress"

    def attempts_file(self, chunk: Chunk) -> Path:
        """One line (the process id) per attempt started in this run."""
        return self.path / f"{chunk.name}.attempts"

    def is_done(self, chunk: Chunk) -> bool:
        return self.chunk_file(chunk).is_file()

    def damage(self, chunk: Chunk) -> str | None:
        """Why a done chunk's file cannot be used (it does not decode to the chunk's frame
        count, which its name records), or None when it can. Decodes the whole file."""
        path = self.chunk_file(chunk)
        try:
            decoded = count_frames(path)
        except (av.FFmpegError, OSError) as failure:
            return f"{path.name} does not decode ({failure})"
        if decoded != chunk.frames:
            return f"{path.name} decodes to {decoded} frames, not {chunk.frames}"
        return None

    def frames_encoded(self, chunk: Chunk) -> int:
        try:
            return int(self.progress_file(chunk).read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def attempts(self, chunk: Chunk) -> list[int]:
        try:
            return [int(line) for line in self.attempts_file(chunk).read_text().split()]
        except FileNotFoundError:
            return []

    def forget_attempts(self, chunk: Chunk) -> None:
        self.attempts_file(chunk).unlink(missing_ok=True)
        self.progress_file(chunk).unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the job folder (after a successful render)."""
        for entry in self.path.iterdir():
            entry.unlink()
        self.path.rmdir()
