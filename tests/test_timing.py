"""Exact output timing: lengths, pairs and timestamps, and the SelectEvery alignment."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from vsdain.filter.timing import FrameTiming, Slot

NTSC_FILM = Fraction(24000, 1001)
NTSC_60 = Fraction(60000, 1001)


@pytest.mark.parametrize("multi", [2, 3, 4, 7])
@pytest.mark.parametrize("length", [2, 5, 24])
def test_multi_gives_length_times_multi_and_even_timestamps(multi, length):
    timing = FrameTiming.from_multi(length, NTSC_FILM, multi)
    assert timing.output_fps == NTSC_FILM * multi
    assert timing.output_length == length * multi
    for n in range(timing.output_length):
        assert timing.slot(n) == Slot(n // multi, Fraction(n % multi, multi))


def test_film_to_ntsc_60_cycles_every_two_source_frames():
    timing = FrameTiming(10, NTSC_FILM, NTSC_60)
    assert timing.step == Fraction(2, 5)
    assert timing.output_length == 25
    expected = [(0, 0), (0, 2), (0, 4), (1, 1), (1, 3)]
    for n in range(25):
        left, fifths = expected[n % 5]
        assert timing.slot(n) == Slot(2 * (n // 5) + left, Fraction(fifths, 5))


def test_23_976_to_exact_60_stays_exact_after_many_frames():
    timing = FrameTiming(100_000, NTSC_FILM, Fraction(60))
    assert timing.step == Fraction(400, 1001)
    n = 1001 * 97
    assert timing.slot(n) == Slot(400 * 97, Fraction(0))
    assert timing.slot(n + 3) == Slot(400 * 97 + 1, Fraction(199, 1001))


@pytest.mark.parametrize(
    ("source_fps", "output_fps", "length"),
    [
        (NTSC_FILM, NTSC_60, 7),
        (Fraction(25), Fraction(30000, 1001), 13),
        (Fraction(60), Fraction(24), 9),
    ],
)
def test_output_lasts_as_long_as_the_source(source_fps, output_fps, length):
    timing = FrameTiming(length, source_fps, output_fps)
    assert timing.output_length == math.ceil(length * output_fps / source_fps)
    # The last output frame starts inside the source's last frame period, the next would not.
    assert timing.slot(timing.output_length - 1).left <= length - 1
    assert timing.output_length * timing.step >= length
    assert timing.output_duration == 1 / output_fps


def test_slots_past_the_last_source_frame_have_it_as_left():
    timing = FrameTiming.from_multi(3, NTSC_FILM, 4)
    assert [timing.slot(n) for n in (8, 9, 10, 11)] == [
        Slot(2, Fraction(0)),
        Slot(2, Fraction(1, 4)),
        Slot(2, Fraction(2, 4)),
        Slot(2, Fraction(3, 4)),
    ]


def test_downsampling_can_leave_pairs_without_interior_slots():
    timing = FrameTiming(10, Fraction(60), Fraction(24))
    assert [timing.slot(n).left for n in range(timing.output_length)] == [0, 2, 5, 7]
    assert timing.slot(1) == Slot(2, Fraction(1, 2))


@pytest.mark.parametrize(
    ("source_fps", "output_fps"),
    [
        (NTSC_FILM, NTSC_FILM * 2),
        (NTSC_FILM, NTSC_FILM * 3),
        (NTSC_FILM, NTSC_60),
        (NTSC_FILM, Fraction(60)),
        (Fraction(60), Fraction(24)),
        (Fraction(30), Fraction(10)),
    ],
)
@pytest.mark.parametrize("length", [2, 3, 11, 2003])
def test_select_every_reproduces_the_left_indices(source_fps, output_fps, length):
    # std.SelectEvery's rule, written out: output k of cycle c is source c * cycle + offset,
    # and a partial last cycle keeps the offsets that exist.
    timing = FrameTiming(length, source_fps, output_fps)
    cycle, offsets = timing.select_every()
    assert cycle >= 2
    assert offsets == sorted(offsets)
    selected = [
        start + offset
        for start in range(0, length, cycle)
        for offset in offsets
        if start + offset < length
    ]
    assert selected == [timing.slot(n).left for n in range(timing.output_length)]


def test_rejects_nonsense():
    with pytest.raises(ValueError):
        FrameTiming(0, NTSC_FILM, NTSC_60)
    with pytest.raises(ValueError):
        FrameTiming(5, NTSC_FILM, Fraction(0))
    with pytest.raises(IndexError):
        FrameTiming.from_multi(5, NTSC_FILM, 2).slot(10)


def test_timestamps_between_are_the_pairs_interior_slots():
    timing = FrameTiming(10, NTSC_FILM, NTSC_60)
    assert timing.timestamps_between(0, 1) == [Fraction(2, 5), Fraction(4, 5)]
    assert timing.timestamps_between(1, 2) == [Fraction(1, 5), Fraction(3, 5)]
    # A pair spanning a duplicate: outputs at 2/5 .. 8/5 of the way from 0 to 2, halved.
    assert timing.timestamps_between(0, 2) == [Fraction(k, 5) for k in (1, 2, 3, 4)]
    assert FrameTiming(10, Fraction(60), Fraction(24)).timestamps_between(0, 1) == []
