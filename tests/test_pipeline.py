"""The GPU pipeline's parts, on every device available: one pair's timestamps synthesised as
one batch (equal to one by one, bit-exact on the CPU), the batch's bookkeeping and memory
rule in the pair cache, and the transfers (pinned buffers, non-blocking copies, streams),
which on the CPU are the plain frame conversions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import torch
from filter_clips import clip_from_arrays, pattern, random_network
from tolerances import TOLERANCES

from vsdain.filter import pair_cache as pair_cache_module
from vsdain.filter.frames import frame_to_tensor, tensor_to_planes
from vsdain.filter.pair_cache import MAX_TIMESTAMP_BATCH, PairCache
from vsdain.filter.transfer import PendingPlanes, Transfers, resolved
from vsdain.model import Padding
from vsdain.model.tiling import TilePlan

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
QUARTERS = [Fraction(1, 4), Fraction(1, 2), Fraction(3, 4)]


def _frames(count: int = 3):
    clip = clip_from_arrays([pattern(n) for n in range(count)])
    return [clip.get_frame(n) for n in range(count)]


def _assert_frames_equal(actual: np.ndarray, expected: np.ndarray, device: str) -> None:
    if device == "cpu":
        np.testing.assert_array_equal(actual, expected)
    else:  # cuDNN may pick other algorithms for another batch size
        np.testing.assert_allclose(actual, expected, **TOLERANCES[torch.float32])


@pytest.fixture(scope="module")
def network():
    return random_network()


@pytest.fixture(scope="module")
def pair(network):
    frames = [torch.from_numpy(pattern(n)).unsqueeze(0) for n in (0, 1)]
    padding = Padding.for_size(*frames[0].shape[-2:])
    with torch.inference_mode():
        first, second = (network.frame_features(padding.pad(frame)) for frame in frames)
        return network.pair_features(first, second)


# --- the network: several timestamps, one batch -----------------------------------------------


@pytest.mark.slow
def test_timestamps_as_one_batch_are_bit_exact_with_one_by_one_on_the_cpu(network, pair):
    timestamps = [0.25, 0.75]
    with torch.inference_mode():
        alone = [network.synthesize(pair, t) for t in timestamps]
        batched = network.synthesize_timestamps(pair, timestamps)
        (single,) = network.synthesize_timestamps(pair, timestamps[:1])  # a batch of one
        assert network.synthesize_timestamps(pair, []) == []
    assert len(batched) == len(timestamps)
    for one, many in zip(alone, batched, strict=True):
        for name in ("blend", "output", "flow_to_first", "flow_to_second"):
            assert torch.equal(getattr(one, name), getattr(many, name)), name
    assert torch.equal(single.output, alone[0].output)


# --- the pair cache: batches of a pair's pending timestamps -----------------------------------


def _cache(model, device: str, **options) -> PairCache:
    return PairCache(
        model,
        Padding.for_size(pattern(0).shape[1], pattern(0).shape[2]),
        device=torch.device(device),
        dtype=torch.float32,
        sample_type=np.dtype(np.float32),
        **options,
    )


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_batched_timestamps_give_the_frames_one_by_one_gives(device):
    model = random_network().to(device)
    frames = _frames(3)
    one_by_one = _cache(model, device, batch_timestamps=False)
    batched = _cache(
        model, device, timestamps_of=lambda first, second: QUARTERS, batch_timestamps=True
    )
    calls = []
    synthesize_timestamps = model.synthesize_timestamps

    def counted(pair, timestamps, **options):
        calls.append(list(timestamps))
        return synthesize_timestamps(pair, timestamps, **options)

    model.synthesize_timestamps = counted
    for first in (0, 1):
        for t in QUARTERS:
            expected = one_by_one.interpolated(first, first + 1, t, *frames[first : first + 2])
            actual = batched.interpolated(first, first + 1, t, *frames[first : first + 2])
            _assert_frames_equal(actual, expected, device)
    # The clip's first timestamp runs alone (it chooses the tiles and measures the cost);
    # the pair's other two then run as one batch, and the next pair's three as one.
    assert calls == [[0.5, 0.75], [0.25, 0.5, 0.75]]
    assert batched.batches == 2
    assert not any(record.finished for record in batched._timestamps.values())
    if device == "cuda":
        assert torch.backends.cudnn.benchmark


@dataclass(eq=False)
class _FakePair:
    """Stands for a pair's features: what the memory rule reads."""

    flow_forward: torch.Tensor


@dataclass
class _FakeSynthesis:
    output: torch.Tensor


class _FakeModel:
    """Synthesises frames filled with their t, and records its batches."""

    def __init__(self, padded: tuple[int, int]) -> None:
        self.padded = padded
        self.batches: list[list[float]] = []

    def synthesize_timestamps(self, pair, timestamps):
        self.batches.append(list(timestamps))
        return [_FakeSynthesis(torch.full((1, 3, *self.padded), t)) for t in timestamps]


@pytest.fixture
def fake_cache(monkeypatch):
    """A pair cache on a stand-in network whose batches hold every pending timestamp; single
    timestamps are filled with t + 10 so that the tests see which path made a frame."""
    padding = Padding.for_size(*pattern(0).shape[1:])
    model = _FakeModel(padding.padded_size)
    cache = PairCache(
        model,
        padding,
        device=torch.device("cpu"),
        dtype=torch.float32,
        sample_type=np.dtype(np.float32),
        timestamps_of=lambda first, second: QUARTERS,
        batch_timestamps=True,
    )
    shape = (3, *pattern(0).shape[1:])
    monkeypatch.setattr(PairCache, "_frame_features", lambda self, frame: object())
    monkeypatch.setattr(
        PairCache,
        "_pair",
        lambda self, first, second: _FakePair(torch.zeros(1, 2, *padding.padded_size)),
    )
    monkeypatch.setattr(
        PairCache, "_synthesize", lambda self, pair, t: np.full(shape, float(t) + 10, np.float32)
    )
    monkeypatch.setattr(PairCache, "_settle", lambda self, pair, t: setattr(self, "_settled", True))
    monkeypatch.setattr(
        PairCache, "_batch_size", lambda self, pair: MAX_TIMESTAMP_BATCH if self._settled else 1
    )
    return cache


def test_the_cpu_default_synthesises_one_timestamp_per_request(fake_cache):
    cache = PairCache(
        fake_cache.model,
        fake_cache.padding,
        device=torch.device("cpu"),
        dtype=torch.float32,
        sample_type=np.dtype(np.float32),
        timestamps_of=lambda first, second: QUARTERS,
    )
    assert not cache.batch_timestamps
    benchmark = torch.backends.cudnn.benchmark
    frames = _frames(2)
    for t in QUARTERS:
        assert cache.interpolated(0, 1, t, *frames)[0, 0, 0] == float(t) + 10
    assert cache.batches == 0 and not cache._timestamps and not cache.model.batches
    assert torch.backends.cudnn.benchmark == benchmark  # only a GPU turns the search on


def test_kept_frames_are_handed_out_once_and_go_with_their_pair(fake_cache):
    frames = _frames(4)
    cache, model = fake_cache, fake_cache.model

    def value(first: int, t: Fraction) -> float:
        return float(cache.interpolated(first, first + 1, t, *frames[first : first + 2])[0, 0, 0])

    assert value(0, Fraction(1, 4)) == 10.25  # the clip's first timestamp runs alone
    assert value(0, Fraction(1, 2)) == 0.5  # a batch of 1/2 and 3/4
    assert model.batches == [[0.5, 0.75]]
    assert list(cache._timestamps[(0, 1)].finished) == [Fraction(3, 4)]
    # Asked again (VapourSynth's own cache let the frame go), 1/2 runs alone: a batch never
    # makes a timestamp that was handed out.
    assert value(0, Fraction(1, 2)) == 10.5
    assert value(1, Fraction(3, 4)) == 0.75  # another pair: 3/4 first, then 1/4 and 1/2
    assert model.batches[-1] == [0.75, 0.25, 0.5]
    value(2, Fraction(1, 4))  # the cache holds two pairs: (0, 1) goes, with its 3/4
    assert (0, 1) not in cache._timestamps
    assert value(1, Fraction(1, 4)) == 0.25 and value(1, Fraction(1, 2)) == 0.5
    assert not cache._timestamps[(1, 2)].finished


def test_a_batch_that_runs_out_of_memory_is_redone_one_by_one(fake_cache, monkeypatch, caplog):
    frames = _frames(2)

    def out_of_memory(pair, timestamps):
        raise torch.OutOfMemoryError("no room for the batch")

    fake_cache.interpolated(0, 1, Fraction(1, 4), *frames)
    fake_cache._timestamp_cost = 1.0
    monkeypatch.setattr(fake_cache.model, "synthesize_timestamps", out_of_memory)
    with caplog.at_level(logging.WARNING, logger=pair_cache_module.__name__):
        planes = fake_cache.interpolated(0, 1, Fraction(1, 2), *frames)
    assert planes[0, 0, 0] == 10.5
    assert fake_cache._timestamp_cost is None  # no more batches for this clip
    assert "one at a time" in caplog.text


def test_a_batch_is_as_large_as_the_memory_budget_allows(monkeypatch):
    padding = Padding.for_size(*pattern(0).shape[1:])
    height, width = padding.padded_size
    pair = _FakePair(torch.zeros(1, 2, height, width))
    plan = TilePlan()
    cache = PairCache(
        object(),
        padding,
        device=torch.device("cpu"),
        dtype=torch.float32,
        sample_type=np.dtype(np.float32),
        tiles=plan,
        timestamps_of=lambda first, second: QUARTERS,
        batch_timestamps=True,
    )
    assert cache._batch_size(pair) == 1  # nothing measured yet
    cache._settled = True
    plan.chosen = True
    cache._timestamp_cost = 1000.0
    per_timestamp = height * width * (1000 + pair_cache_module.WHOLE_FRAME_CHANNELS * 4)
    for budget, expected in [
        (None, 1),
        (per_timestamp - 1, 1),
        (2 * per_timestamp, 2),
        (3.5 * per_timestamp, 3),
        (100 * per_timestamp, MAX_TIMESTAMP_BATCH),
    ]:
        monkeypatch.setattr(plan, "budget", lambda device, held, budget=budget: budget)
        assert cache._batch_size(pair) == expected, budget
    plan.current = 128  # one timestamp is already tiled: no batch
    assert cache._batch_size(pair) == 1
    forced = TilePlan(tile=256)  # forced tiles ask for little memory: no batch either
    cache.tiles = forced
    monkeypatch.setattr(forced, "budget", lambda device, held: 100 * per_timestamp)
    forced.current = None
    assert cache._batch_size(pair) == 1


# --- the transfers ------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_transfers_give_the_plain_conversions(device, dtype):
    if dtype == torch.float16 and device == "cpu":
        pytest.skip("float16 networks run on CUDA only")
    frame = _frames(1)[0]
    transfers = Transfers(torch.device(device))
    with transfers.computing():
        uploaded = transfers.upload(frame, dtype)
        result = uploaded * 0.5
    if transfers.cuda:
        torch.cuda.synchronize()  # the checks below read the upload on the default stream
    expected = frame_to_tensor(frame, device=device, dtype=dtype)
    assert torch.equal(uploaded, expected)
    planes = resolved(transfers.download(result, np.dtype(np.float32)))
    np.testing.assert_array_equal(planes, tensor_to_planes(expected * 0.5, np.dtype(np.float32)))
    assert planes.flags.c_contiguous and planes.dtype == np.float32
    if device == "cpu":
        assert not transfers.cuda
        assert isinstance(transfers.download(result, np.dtype(np.float32)), np.ndarray)
    else:
        streams = {transfers.upload_stream, transfers.compute_stream, transfers.download_stream}
        assert len(streams) == 3 and torch.cuda.current_stream() not in streams


def test_pending_planes_wait_for_their_download_event():
    class Event:
        waited = False

        def synchronize(self):
            self.waited = True

    event = Event()
    host = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2)
    planes = resolved(PendingPlanes(host, event))
    assert event.waited
    np.testing.assert_array_equal(planes, host.numpy())
    plain = np.zeros((3, 2, 2), np.float32)
    assert resolved(plain) is plain
