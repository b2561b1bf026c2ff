"""Memory measurements that share a device: nested CUDA peaks, the per-device lock, and two
filters' tile probes running at once on two threads.

These run on the CPU against a fake CUDA: the few ``torch.cuda`` functions
:class:`vsdain.memory.PeakMemory` and :func:`vsdain.memory.available_bytes` call are replaced
by a counter of allocated bytes with PyTorch's semantics (one peak per device for the whole
process, reset to the bytes in use), and ``torch.device("cuda:0")`` serves only as a name.
What this covers is the bookkeeping: which measurement resets the peak when, what each is
handed, which probes wait for which. What it cannot show is the real allocator's numbers
(block rounding, the caching allocator's reserve, kernels' workspaces, asynchronous frees
made visible by ``synchronize``): those are only observable on a GPU.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
import torch

from vsdain import memory
from vsdain.model import tiling
from vsdain.model.synthesis import SYNTHESIS_RADIUS
from vsdain.model.tiling import PROBE_TILE, SAFETY_FACTOR, TilePlan, choose_tile, held_bytes

CUDA = torch.device("cuda:0")
HEIGHT = WIDTH = 256
# The probe window measure_pixel_cost takes on a 256x256 frame.
PROBE_PIXELS = (PROBE_TILE + SYNTHESIS_RADIUS) ** 2
# How long a probe waits for the other to join it: long enough that two probes that can run
# at once always do, short enough that probes taking turns do not make the test slow.
OVERLAP_WAIT_S = 0.3


class FakeCuda:
    """Allocated bytes and their peak on one device, as ``torch.cuda`` counts them."""

    def __init__(self) -> None:
        self.allocated = 0
        self.peak = 0
        self.resets = 0
        self._lock = threading.Lock()

    def allocate(self, size: int) -> None:
        with self._lock:
            self.allocated += size
            self.peak = max(self.peak, self.allocated)

    def free(self, size: int) -> None:
        with self._lock:
            self.allocated -= size

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def on_cuda(device) -> None:
            assert torch.device(device).type == "cuda", device

        def reset_peak_memory_stats(device=None) -> None:
            on_cuda(device)
            with self._lock:
                self.peak = self.allocated
                self.resets += 1

        def memory_allocated(device=None) -> int:
            on_cuda(device)
            return self.allocated

        def max_memory_allocated(device=None) -> int:
            on_cuda(device)
            return self.peak

        functions = {
            "synchronize": on_cuda,
            "empty_cache": lambda: None,
            "current_device": lambda: 0,
            "reset_peak_memory_stats": reset_peak_memory_stats,
            "memory_allocated": memory_allocated,
            "max_memory_allocated": max_memory_allocated,
            "memory_reserved": memory_allocated,  # nothing cached
            "mem_get_info": lambda device=None: (64 * 2**30, 80 * 2**30),
        }
        for name, function in functions.items():
            monkeypatch.setattr(torch.cuda, name, function)


@pytest.fixture
def cuda(monkeypatch) -> FakeCuda:
    fake = FakeCuda()
    fake.install(monkeypatch)
    yield fake
    assert memory.open_cuda_measurements(CUDA) == 0


# --- nested measurements ---------------------------------------------------------------------


def test_nested_measurements_each_get_their_own_peak(cuda):
    cuda.allocate(10)  # held before either begins
    with memory.PeakMemory(CUDA) as outer:
        cuda.allocate(1000)
        cuda.free(1000)  # the outer peak so far: 1000 above its start, gone before the inner
        cuda.allocate(20)
        with memory.PeakMemory(CUDA) as inner:
            assert memory.open_cuda_measurements(CUDA) == 2
            cuda.allocate(300)
            cuda.free(300)
        cuda.allocate(50)
    assert cuda.resets == 2
    assert inner.bytes == 300
    assert outer.bytes == 1000  # the peak before the inner's reset is kept
    with memory.PeakMemory(CUDA) as outer:
        with memory.PeakMemory(CUDA) as inner:
            cuda.allocate(4000)
            cuda.free(4000)
        cuda.allocate(100)
    assert inner.bytes == 4000
    assert outer.bytes == 4000  # the outer sees the inner's peak


def test_three_deep_and_interleaved_ends(cuda):
    first = memory.PeakMemory(CUDA).__enter__()
    cuda.allocate(500)
    second = memory.PeakMemory(CUDA).__enter__()  # baseline 500
    cuda.allocate(200)
    cuda.free(700)
    third = memory.PeakMemory(CUDA).__enter__()  # baseline 0
    cuda.allocate(100)
    second.__exit__(None, None, None)  # ends before the third, which began inside it
    cuda.allocate(900)
    cuda.free(1000)
    third.__exit__(None, None, None)
    first.__exit__(None, None, None)
    assert (first.bytes, second.bytes, third.bytes) == (1000, 200, 1000)


def test_a_measurement_ended_by_an_error_leaves_the_list(cuda):
    with pytest.raises(RuntimeError, match="inside"), memory.PeakMemory(CUDA) as peak:
        cuda.allocate(64)
        raise RuntimeError("inside")
    assert peak.bytes == 64
    # The fixture checks that no measurement is left open.


def test_cpu_measurements_still_sample_the_resident_size():
    with memory.PeakMemory(torch.device("cpu")) as peak:
        block = torch.ones(32 * 2**20, dtype=torch.uint8)  # 32 MiB, written so it is resident
        time.sleep(20 * memory.SAMPLE_INTERVAL_S)
        del block
    assert peak.bytes is not None and peak.bytes >= 16 * 2**20


# --- the lock --------------------------------------------------------------------------------


def test_one_lock_per_device_whatever_its_name(cuda):
    lock = memory.device_lock(CUDA)
    assert memory.device_lock("cuda:0") is lock
    assert memory.device_lock("cuda") is lock  # the current device is 0
    assert memory.device_lock(torch.device("cuda")) is lock
    assert memory.device_lock("cuda:1") is not lock
    assert memory.device_lock("cpu") is memory.device_lock(torch.device("cpu", 0))
    assert memory.device_lock("cpu") is not lock
    with lock, lock:  # re-entrant: a measurement may hold another of its own thread
        pass


# --- two filters probing on one device -----------------------------------------------------


class ProbedModel:
    """A model whose per-window work allocates ``bytes_per_pixel`` for each pixel of the
    window on the fake device and waits for the other model's work to begin (up to
    :data:`OVERLAP_WAIT_S`), so that two probes that are free to overlap do."""

    def __init__(self, cuda: FakeCuda, bytes_per_pixel: int, log: list) -> None:
        self.cuda = cuda
        self.bytes_per_pixel = bytes_per_pixel
        self.log = log
        self.began = threading.Event()
        self.other: ProbedModel | None = None
        self.tiles: list[int | None] = []

    def project_flows(self, pair, t):
        return "flows"

    def synthesize_window(self, pair, t, flows, window):
        size = self.bytes_per_pixel * window.pixels
        self.log.append(("begin", self.bytes_per_pixel, time.monotonic()))
        self.cuda.allocate(size)
        self.began.set()
        self.other.began.wait(OVERLAP_WAIT_S)
        self.cuda.free(size)
        self.log.append(("end", self.bytes_per_pixel, time.monotonic()))

    def synthesize(self, pair, t, tile=None):
        self.tiles.append(tile)
        return "frame"


def fake_pair():
    """What the tile choice reads of a pair: the shape, device and element size of a
    (1, 2, 256, 256) float32 flow on the fake device."""
    flow = SimpleNamespace(shape=(1, 2, HEIGHT, WIDTH), device=CUDA, element_size=lambda: 4)
    return SimpleNamespace(flow_forward=flow)


def two_models(cuda: FakeCuda):
    log: list = []
    first, second = ProbedModel(cuda, 100, log), ProbedModel(cuda, 37, log)
    first.other, second.other = second, first
    return first, second, log


def in_two_threads(first, second) -> list:
    """Calls ``first`` and ``second`` at once on two threads; their results, or their error."""
    results: list = [None, None]
    errors: list = []
    start = threading.Barrier(2)

    def run(index, function):
        try:
            start.wait()
            results[index] = function()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def most_at_once(log: list) -> int:
    running = highest = 0
    for event, _, _ in sorted(log, key=lambda entry: entry[2]):
        running += 1 if event == "begin" else -1
        highest = max(highest, running)
    return highest


def test_probes_on_two_threads_take_turns_and_each_measure_their_own_cost(cuda):
    first, second, log = two_models(cuda)
    pair = fake_pair()
    costs = in_two_threads(
        lambda: tiling.measure_pixel_cost(first, pair, 0.5),
        lambda: tiling.measure_pixel_cost(second, pair, 0.5),
    )
    assert most_at_once(log) == 1
    assert costs == [100.0, 37.0]


def test_without_the_lock_the_fake_shows_probes_disturbing_each_other(cuda, monkeypatch):
    """The harness can tell: with a lock of its own for each probe, the two overlap and the
    probe that began first counts the other's tile too."""
    monkeypatch.setattr(memory, "device_lock", lambda device: threading.RLock())
    first, second, log = two_models(cuda)
    pair = fake_pair()
    costs = in_two_threads(
        lambda: tiling.measure_pixel_cost(first, pair, 0.5),
        lambda: tiling.measure_pixel_cost(second, pair, 0.5),
    )
    assert most_at_once(log) == 2
    assert sorted(costs) != [37.0, 100.0]
    assert 137.0 in costs


def test_a_measurement_around_concurrent_probes_keeps_its_peak(cuda):
    """A benchmark's measurement open on the main thread while two filters probe: each probe
    resets the device peak, and the benchmark still sees the highest point."""
    first, second, _ = two_models(cuda)
    pair = fake_pair()
    with memory.PeakMemory(CUDA) as outer:
        cuda.allocate(500_000)  # the benchmark's own, held through the probes
        costs = in_two_threads(
            lambda: tiling.measure_pixel_cost(first, pair, 0.5),
            lambda: tiling.measure_pixel_cost(second, pair, 0.5),
        )
        cuda.free(500_000)
    assert costs == [100.0, 37.0]
    assert outer.bytes == 500_000 + 100 * PROBE_PIXELS


def test_two_tile_plans_on_one_device_choose_from_their_own_cost(cuda):
    first, second, _ = two_models(cuda)
    pair = fake_pair()
    budget = 1_000_000  # bytes for one timestamp's work beyond what the pair holds
    plans = [TilePlan(None, max_memory=held_bytes(pair) + budget) for _ in range(2)]
    in_two_threads(
        lambda: plans[0].synthesize(first, pair, 0.5),
        lambda: plans[1].synthesize(second, pair, 0.5),
    )

    def tile_for(cost: float) -> int | None:
        return choose_tile(HEIGHT, WIDTH, cost * SAFETY_FACTOR, budget)

    assert [plans[0].current, plans[1].current] == [tile_for(100), tile_for(37)]
    assert [first.tiles, second.tiles] == [[tile_for(100)], [tile_for(37)]]
    # Had one counted the other's tile, it would have chosen differently.
    assert tile_for(137) not in (tile_for(100), tile_for(37))
