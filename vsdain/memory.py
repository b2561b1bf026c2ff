"""Memory on a device: how much is free, and the peak of one measured stretch of work.

On a GPU the peak is PyTorch's own count of the bytes its tensors hold. On the CPU PyTorch
keeps no such count, so the process's resident memory is sampled by a thread every few
milliseconds and the peak above the level at the start is taken: that includes VapourSynth's
frames and anything else the work allocates, which is what a user pays. Each stretch is
measured on its own, so peaks of stretches run one after another do not mix. Used by the
filter's automatic tile choice and by the benchmark.

Both counts belong to the whole process, not to one filter: work on other threads adds to
them. :func:`device_lock` lets measurements on one device take turns, and CUDA measurements
that overlap (a benchmark's around a probe's) each keep their own peak, see
:class:`PeakMemory`.

On the CPU the memory left is the least of the kernel's MemAvailable and the room under every
cgroup memory limit the process is in (a container's limit is its cgroup's, which MemAvailable
does not show).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import threading
import time
from types import TracebackType

import torch

SAMPLE_INTERVAL_S = 0.002
_STATM = "/proc/self/statm"

# The files the CPU's available memory is read from; tests point them at a fake tree.
MEMINFO = "/proc/meminfo"
PROC_CGROUP = "/proc/self/cgroup"
PROC_MOUNTINFO = "/proc/self/mountinfo"
# Where the hierarchies are mounted when mountinfo does not say (systemd's and Docker's places).
CGROUP2_MOUNT = "/sys/fs/cgroup"
CGROUP1_MEMORY_MOUNT = "/sys/fs/cgroup/memory"
# cgroup v1 writes "no limit" as the largest page-aligned 63-bit number (9223372036854771712);
# any limit from an exbibyte up is taken for it.
CGROUP1_UNLIMITED = 2**60


def available_bytes(device: torch.device) -> int | None:
    """Memory a new allocation on ``device`` can still get: CUDA's free memory plus what
    PyTorch's caching allocator holds unused; on the CPU the kernel's MemAvailable, lowered to
    the room under the tightest cgroup limit (see :func:`cgroup_room_bytes`). None where the
    system does not say."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    meminfo = _meminfo()
    room = cgroup_room_bytes(memory_total=meminfo.get("MemTotal"))
    free = meminfo.get("MemAvailable")
    if free is None or room is None:
        return room if free is None else free
    return min(free, room)


def _meminfo() -> dict[str, int]:
    """/proc/meminfo's fields in bytes (empty where it cannot be read)."""
    fields = {}
    try:
        with open(MEMINFO, encoding="ascii") as meminfo:
            lines = meminfo.readlines()
    except (OSError, UnicodeDecodeError):
        return fields
    for line in lines:
        name, _, value = line.partition(":")
        number, *unit = value.split() or ["?"]
        if number.isdigit():
            fields[name] = int(number) * (1024 if unit == ["kB"] else 1)
    return fields


# --- cgroups ---------------------------------------------------------------------------------

# version: (limit file, usage file, the memory.stat field of file cache the kernel can drop).
# v1's usage counts the cgroup's children, so its stat field is the one that counts them too.
_CGROUP_FILES = {
    2: ("memory.max", "memory.current", "inactive_file"),
    1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
}


def cgroup_room_bytes(memory_total: int | None = None) -> int | None:
    """Bytes this process can still allocate before the tightest cgroup memory limit it is
    under: its own cgroup's and every ancestor's up to the hierarchy's mount, v2 and v1 alike.
    The room under a limit is the limit less the usage, where the usage leaves out inactive
    file cache (the kernel reclaims it when the cgroup nears its limit, and MemAvailable
    counts such cache as available too). A limit above ``memory_total`` (bytes of RAM), v2's
    "max" and v1's huge "no limit" number are no limit. None where no limit applies or none
    can be read."""
    rooms = []
    for version, directory in memory_cgroup_directories():
        room = _cgroup_room(version, directory, memory_total)
        if room is not None:
            rooms.append(room)
    return min(rooms, default=None)


def memory_cgroup_directories() -> list[tuple[int, str]]:
    """(version, directory) of each cgroup whose memory limit applies to this process: for v2
    and for v1's memory controller, the process's own cgroup first, then its ancestors up to
    the directory the hierarchy is mounted on. Empty where /proc/self/cgroup cannot be read."""
    directories = []
    mounts = _mounts()
    for version, path in _memberships().items():
        default = CGROUP2_MOUNT if version == 2 else CGROUP1_MEMORY_MOUNT
        mount, inside = _place(path, mounts.get(version) or [("/", default)])
        directories += [
            (version, os.path.join(mount, *inside[:depth])) for depth in range(len(inside), -1, -1)
        ]
    return directories


def _place(path: str, mounts: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """The mount point cgroup ``path`` is seen under and its components below that mount's
    root. A cgroup outside every mount (another cgroup namespace's) gets the first mount
    itself: the limits of the cgroup it shows still apply."""
    for root, mount in mounts:
        inside = _relative_to(path, root)
        if inside is not None:
            return mount, inside
    return mounts[0][1], []


def _memberships() -> dict[int, str]:
    """The process's cgroup path per version: v2's ``0::/path`` line, v1's line whose
    controller list names ``memory``."""
    try:
        with open(PROC_CGROUP, encoding="utf-8") as cgroups:
            lines = cgroups.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    paths = {}
    for line in lines:
        number, _, rest = line.partition(":")
        controllers, separator, path = rest.partition(":")
        if not separator:
            continue
        if number == "0" and controllers == "":
            paths[2] = path
        elif "memory" in controllers.split(","):
            paths[1] = path
    return paths


def _mounts() -> dict[int, list[tuple[str, str]]]:
    """(root inside the hierarchy, mount point) of each cgroup2 mount and each v1 mount with
    the memory controller, from /proc/self/mountinfo; empty where it cannot be read."""
    mounts: dict[int, list[tuple[str, str]]] = {}
    try:
        with open(PROC_MOUNTINFO, encoding="utf-8") as mountinfo:
            for line in mountinfo:
                # id parent major:minor root mount-point options [optional...] - type source super
                before, separator, after = line.partition(" - ")
                fields, filesystem = before.split(), after.split()
                if not separator or len(fields) < 5 or len(filesystem) < 3:
                    continue
                root, mount = _unescape(fields[3]), _unescape(fields[4])
                if filesystem[0] == "cgroup2":
                    mounts.setdefault(2, []).append((root, mount))
                elif filesystem[0] == "cgroup" and "memory" in filesystem[2].split(","):
                    mounts.setdefault(1, []).append((root, mount))
    except (OSError, UnicodeDecodeError):
        pass
    return mounts


def _unescape(field: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space) decoded."""
    if "\\" not in field:
        return field
    return field.encode("latin-1").decode("unicode_escape")


def _relative_to(path: str, root: str) -> list[str] | None:
    """The components of cgroup ``path`` below ``root``, None where it is not below it."""
    parts = [part for part in path.split("/") if part]
    root_parts = [part for part in root.split("/") if part]
    if parts[: len(root_parts)] != root_parts or ".." in parts:
        return None
    return parts[len(root_parts) :]


def _cgroup_room(version: int, directory: str, memory_total: int | None) -> int | None:
    limit_name, usage_name, cache_field = _CGROUP_FILES[version]
    limit_text = _read_text(os.path.join(directory, limit_name))
    if limit_text is None or limit_text == "max":
        return None
    try:
        limit = int(limit_text)
    except ValueError:
        return None
    if limit >= CGROUP1_UNLIMITED or (memory_total is not None and limit > memory_total):
        return None
    try:
        usage = int(_read_text(os.path.join(directory, usage_name)) or "")
    except ValueError:  # the limit alone still bounds the room
        return limit
    usage -= min(usage, _stat_field(directory, cache_field))
    return max(0, limit - usage)


def _stat_field(directory: str, name: str) -> int:
    """One field of the cgroup's memory.stat in bytes, 0 where it is missing."""
    for line in (_read_text(os.path.join(directory, "memory.stat")) or "").splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def release_unused(device: torch.device) -> None:
    """Give memory that nothing uses back: collected garbage, PyTorch's CUDA cache, and on
    the CPU glibc's free heap pages (so the resident size shows what is really in use)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    else:
        trim = _malloc_trim()
        if trim is not None:
            trim(0)


@functools.cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def resident_bytes() -> int | None:
    """The process's resident set size, or None where the OS does not say (non-Linux)."""
    try:
        with open(_STATM, encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# --- measurements that share a device ----------------------------------------------------------

# Process-wide on purpose: the counters these guard are PyTorch's per device for the whole
# process (and the CPU's resident size is the process's), so every filter must see the same
# lock and the same list of open measurements for a device.
_REGISTRY_LOCK = threading.Lock()
_DEVICE_LOCKS: dict[str, threading.RLock] = {}
_OPEN_CUDA_MEASUREMENTS: dict[str, list[PeakMemory]] = {}


def device_key(device: torch.device | str) -> str:
    """The name that tells devices apart: ``cpu``, or type and index (``cuda`` is the
    calling thread's current CUDA device, so ``cuda`` and ``cuda:0`` are one device there)."""
    device = torch.device(device)
    if device.type == "cpu":
        return "cpu"
    if device.index is None and device.type == "cuda":
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def device_lock(device: torch.device | str) -> threading.RLock:
    """The process's one lock for ``device`` (the same object for every name of it): held
    around a memory measurement, it keeps measurements of other threads on that device from
    running at the same time and counting each other's memory. Re-entrant, so a measurement
    held by a thread may contain another of the same thread."""
    key = device_key(device)
    with _REGISTRY_LOCK:
        return _DEVICE_LOCKS.setdefault(key, threading.RLock())


def open_cuda_measurements(device: torch.device | str) -> int:
    """How many :class:`PeakMemory` measurements on CUDA ``device`` are open now."""
    key = device_key(device)
    with _REGISTRY_LOCK:
        return len(_OPEN_CUDA_MEASUREMENTS.get(key, ()))


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.bytes``: the most memory in use
    during the block above what was in use when it began (None if it cannot be measured).

    On CUDA the peak is PyTorch's ``max_memory_allocated``, one counter per device for the
    whole process, which each measurement resets when it begins. So that measurements open at
    the same time on one device (one nested in another, or on two threads) each keep their
    own, the device's measurements are kept in a list: one that begins first folds the peak
    reached so far into every other still open, and each ends with the larger of what it was
    given and the device's peak since the last reset. Bytes other threads allocate during the
    block still count (their tensors share the counter); :func:`device_lock` keeps
    measurements themselves from overlapping.

    On the CPU a thread samples the resident size; measurements there are independent.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: int | None = None
        self._baseline = 0
        self._highest = 0
        self._key: str | None = None
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        release_unused(self.device)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            key = device_key(self.device)
            with _REGISTRY_LOCK:
                reached = torch.cuda.max_memory_allocated(self.device)
                others = _OPEN_CUDA_MEASUREMENTS.setdefault(key, [])
                for other in others:
                    other._highest = max(other._highest, reached)
                torch.cuda.reset_peak_memory_stats(self.device)
                self._baseline = self._highest = torch.cuda.memory_allocated(self.device)
                others.append(self)
                self._key = key
            return self
        baseline = resident_bytes()
        if baseline is not None:
            self._baseline = self._highest = baseline
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            current = resident_bytes() or 0
            self._highest = max(self._highest, current)
            time.sleep(SAMPLE_INTERVAL_S)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._key is not None:
            try:
                torch.cuda.synchronize(self.device)
            finally:
                with _REGISTRY_LOCK:
                    self._highest = max(self._highest, torch.cuda.max_memory_allocated(self.device))
                    others = _OPEN_CUDA_MEASUREMENTS[self._key]
                    others.remove(self)
                    if not others:
                        del _OPEN_CUDA_MEASUREMENTS[self._key]
                    self._key = None
            self.bytes = self._highest - self._baseline
            return
        if self._sampler is None:
            return
        self._stop.set()
        self._sampler.join()
        self._highest = max(self._highest, resident_bytes() or 0)
        self.bytes = self._highest - self._baseline
