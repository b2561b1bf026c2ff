"""The CPU's available memory under cgroup limits, read from fake /proc and cgroup trees.

Each test writes a /proc/meminfo, a /proc/self/cgroup and the cgroup directories under
``tmp_path`` and points :mod:`vsdain.memory` at them, then checks the exact number of bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vsdain import memory

GIB = 2**30
MEM_TOTAL = 16 * GIB
MEM_AVAILABLE = 8 * GIB
# What cgroup v1 writes for "no limit" (the largest page-aligned 63-bit number).
V1_NO_LIMIT = 9223372036854771712
CPU = torch.device("cpu")


class FakeSystem:
    """A /proc and a cgroup v2 and v1 mount under one directory, with no mountinfo unless
    :meth:`mountinfo` writes one (the default mount points apply then)."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.v2 = root / "sys/fs/cgroup"
        self.v1 = root / "sys/fs/cgroup-v1/memory"
        (root / "proc/self").mkdir(parents=True)
        self.meminfo(MEM_TOTAL, MEM_AVAILABLE)
        monkeypatch.setattr(memory, "MEMINFO", str(root / "proc/meminfo"))
        monkeypatch.setattr(memory, "PROC_CGROUP", str(root / "proc/self/cgroup"))
        monkeypatch.setattr(memory, "PROC_MOUNTINFO", str(root / "proc/self/mountinfo"))
        monkeypatch.setattr(memory, "CGROUP2_MOUNT", str(self.v2))
        monkeypatch.setattr(memory, "CGROUP1_MEMORY_MOUNT", str(self.v1))

    def meminfo(self, total: int, available: int) -> None:
        (self.root / "proc/meminfo").write_text(
            f"MemTotal:       {total // 1024} kB\n"
            "MemFree:          123456 kB\n"
            f"MemAvailable:   {available // 1024} kB\n"
            "HugePages_Total:       0\n"
        )

    def membership(self, *lines: str) -> None:
        (self.root / "proc/self/cgroup").write_text("".join(line + "\n" for line in lines))

    def cgroup(self, mount: Path, path: str, **files: object) -> Path:
        """The cgroup directory ``path`` under ``mount``, with ``files`` (``memory_max`` is
        written as memory.max)."""
        directory = mount / path.strip("/")
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (directory / name.replace("_", ".", 1)).write_text(f"{content}\n")
        return directory

    def mountinfo(self, *lines: str) -> None:
        (self.root / "proc/self/mountinfo").write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def system(tmp_path, monkeypatch) -> FakeSystem:
    return FakeSystem(tmp_path, monkeypatch)


# --- cgroup v2 -------------------------------------------------------------------------------


def test_v2_limit_on_the_own_cgroup(system):
    system.membership("0::/app/worker")
    system.cgroup(system.v2, "/")  # the root cgroup has no memory.max
    system.cgroup(system.v2, "/app", memory_max="max", memory_current=900_000_000)
    system.cgroup(system.v2, "/app/worker", memory_max=2 * GIB, memory_current=500_000_000)
    assert memory.cgroup_room_bytes(memory_total=MEM_TOTAL) == 2 * GIB - 500_000_000
    assert memory.available_bytes(CPU) == 2 * GIB - 500_000_000


def test_v2_limit_only_on_an_ancestor_applies_and_the_directories_go_up_to_the_mount(system):
    system.membership("0::/app/worker")
    system.cgroup(system.v2, "/app", memory_max=3_000_000_000, memory_current=1_000_000_000)
    system.cgroup(system.v2, "/app/worker", memory_max="max", memory_current=400_000_000)
    assert memory.memory_cgroup_directories() == [
        (2, str(system.v2 / "app/worker")),
        (2, str(system.v2 / "app")),
        (2, str(system.v2)),
    ]
    assert memory.available_bytes(CPU) == 2_000_000_000


def test_v2_the_tightest_room_wins_not_the_smallest_limit(system):
    system.membership("0::/app/worker")
    # The parent's limit is larger but nearly used up by a sibling.
    system.cgroup(system.v2, "/app", memory_max=5 * GIB, memory_current=4 * GIB + 1000)
    system.cgroup(system.v2, "/app/worker", memory_max=4 * GIB, memory_current=GIB)
    assert memory.available_bytes(CPU) == GIB - 1000


def test_v2_no_limit_anywhere_is_mem_available(system):
    system.membership("0::/app/worker")
    system.cgroup(system.v2, "/app", memory_max="max", memory_current=GIB)
    system.cgroup(system.v2, "/app/worker", memory_max="max", memory_current=GIB)
    assert memory.cgroup_room_bytes(memory_total=MEM_TOTAL) is None
    assert memory.available_bytes(CPU) == MEM_AVAILABLE


def test_v2_inactive_file_cache_counts_as_room(system):
    """The kernel reclaims inactive page cache when the cgroup nears its limit (MemAvailable
    counts such cache as available too): a cgroup full of cache from reading a video still has
    that room."""
    system.membership("0::/job")
    job = system.cgroup(system.v2, "/job", memory_max=2 * GIB, memory_current=2 * GIB - 4096)
    (job / "memory.stat").write_text("anon 100000000\nactive_file 5\ninactive_file 900000000\n")
    assert memory.available_bytes(CPU) == 2 * GIB - (2 * GIB - 4096 - 900_000_000)


def test_the_result_never_exceeds_mem_available(system):
    system.meminfo(MEM_TOTAL, 3 * GIB)
    system.membership("0::/job")
    system.cgroup(system.v2, "/job", memory_max=12 * GIB, memory_current=GIB)  # room: 11 GiB
    assert memory.cgroup_room_bytes(memory_total=MEM_TOTAL) == 11 * GIB
    assert memory.available_bytes(CPU) == 3 * GIB


def test_a_cgroup_full_beyond_its_limit_has_no_room(system):
    system.membership("0::/job")
    system.cgroup(system.v2, "/job", memory_max=GIB, memory_current=GIB + 8192)
    assert memory.available_bytes(CPU) == 0


# --- cgroup v1 -------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["4:memory:/docker/abc", "7:cpu,memory,pids:/docker/abc"])
def test_v1_limit(system, line):
    system.membership("9:name=systemd:/docker/abc", line, "0::/")
    system.cgroup(system.v1, "/docker", memory_limit_in_bytes=V1_NO_LIMIT)
    system.cgroup(
        system.v1, "/docker/abc", memory_limit_in_bytes=GIB, memory_usage_in_bytes=73_741_824
    )
    assert memory.available_bytes(CPU) == GIB - 73_741_824


def test_v1_counts_the_cache_of_its_children_as_room(system):
    system.membership("4:memory:/job")
    job = system.cgroup(
        system.v1, "/job", memory_limit_in_bytes=GIB, memory_usage_in_bytes=GIB - 10
    )
    # inactive_file is this cgroup's own; total_inactive_file, children included, matches
    # the usage, which counts the children too.
    (job / "memory.stat").write_text("inactive_file 1\ntotal_inactive_file 500000000\n")
    assert memory.available_bytes(CPU) == 500_000_010


@pytest.mark.parametrize(
    "limit", [V1_NO_LIMIT, 2**60, MEM_TOTAL + 4096], ids=["v1-sentinel", "2**60", "above-RAM"]
)
def test_v1_unlimited_is_mem_available(system, limit):
    system.membership("4:memory:/docker/abc")
    system.cgroup(system.v1, "/docker", memory_limit_in_bytes=limit, memory_usage_in_bytes=0)
    system.cgroup(system.v1, "/docker/abc", memory_limit_in_bytes=limit, memory_usage_in_bytes=5)
    assert memory.available_bytes(CPU) == MEM_AVAILABLE


def test_v1_and_v2_together_take_the_least(system):
    system.membership("4:memory:/a", "0::/b")
    system.cgroup(system.v1, "/a", memory_limit_in_bytes=3 * GIB, memory_usage_in_bytes=GIB)
    system.cgroup(system.v2, "/b", memory_max=6 * GIB, memory_current=5 * GIB)
    assert memory.available_bytes(CPU) == GIB


# --- finding the mounts ----------------------------------------------------------------------


def escaped(path: Path) -> str:
    """``path`` as mountinfo writes it: a space as ``\\040``."""
    return str(path).replace(" ", "\\040")


def test_mountinfo_names_the_mounts_and_their_roots(system):
    """A container without its own cgroup namespace: its memory hierarchy is mounted from
    /docker/abc, which /proc/self/cgroup names in full. Mount points with a space are written
    with an octal escape."""
    v2 = system.root / "cgroup two"
    v1 = system.root / "v1 memory"
    system.mountinfo(
        f"31 23 0:28 / {system.root}/tmpfs rw,relatime - tmpfs tmpfs rw,mode=755",
        f"35 31 0:32 /docker/abc {escaped(v1)} rw,relatime shared:9 - cgroup cgroup rw,memory",
        f"36 31 0:33 / {system.root}/cpu rw,relatime - cgroup cgroup rw,cpu",
        f"41 31 0:38 / {escaped(v2)} rw,relatime - cgroup2 cgroup2 rw",
    )
    system.membership("4:memory:/docker/abc/inner", "0::/user.slice")
    system.cgroup(v1, "/", memory_limit_in_bytes=2 * GIB, memory_usage_in_bytes=GIB)
    system.cgroup(v1, "/inner", memory_limit_in_bytes=V1_NO_LIMIT, memory_usage_in_bytes=GIB)
    system.cgroup(v2, "/user.slice", memory_max=4 * GIB, memory_current=GIB)
    assert memory.memory_cgroup_directories() == [
        (1, str(v1 / "inner")),
        (1, str(v1)),
        (2, str(v2 / "user.slice")),
        (2, str(v2)),
    ]
    assert memory.available_bytes(CPU) == GIB


def test_a_cgroup_outside_the_mount_gets_the_mounts_own_limit(system):
    """In a cgroup namespace a process moved out of it sees a path with ``..``."""
    system.membership("0::/../sibling")
    system.cgroup(system.v2, "/", memory_max=GIB, memory_current=1000)
    assert memory.memory_cgroup_directories() == [(2, str(system.v2))]
    assert memory.available_bytes(CPU) == GIB - 1000


# --- what cannot be read falls back to MemAvailable --------------------------------------------


def no_membership(system):
    pass


def garbage_membership(system):
    system.membership("not a cgroup line", "\x00\x01")


def missing_tree(system):
    system.membership("0::/gone", "4:memory:/gone")


def garbage_limit(system):
    system.membership("0::/job")
    system.cgroup(system.v2, "/job", memory_max="lots", memory_current=1)


def unreadable_limit(system):
    system.membership("0::/job")
    (system.cgroup(system.v2, "/job", memory_current=1) / "memory.max").mkdir()


def garbage_mountinfo(system):
    system.mountinfo("garbage", "1 2 3 - cgroup2", "")
    system.membership("0::/")


@pytest.mark.parametrize(
    "make",
    [
        no_membership,
        garbage_membership,
        missing_tree,
        garbage_limit,
        unreadable_limit,
        garbage_mountinfo,
    ],
)
def test_what_cannot_be_read_falls_back_to_mem_available(system, make):
    make(system)
    assert memory.cgroup_room_bytes(memory_total=MEM_TOTAL) is None
    assert memory.available_bytes(CPU) == MEM_AVAILABLE


def test_a_limit_without_its_usage_still_bounds_the_room(system):
    system.membership("0::/job")
    system.cgroup(system.v2, "/job", memory_max=GIB)
    assert memory.available_bytes(CPU) == GIB


def test_without_meminfo_the_cgroup_room_or_nothing(system):
    (system.root / "proc/meminfo").unlink()
    assert memory.available_bytes(CPU) is None
    system.membership("0::/job")
    system.cgroup(system.v2, "/job", memory_max=GIB, memory_current=GIB // 2)
    assert memory.available_bytes(CPU) == GIB // 2
