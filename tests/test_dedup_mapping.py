"""The kept-frame mapping of deduplication, in pure Python: which pair and which t feed each
output frame for known cadences, holds, cuts and the clip's end."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vsdain.filter.plan import (
    REPEAT,
    SOURCE,
    SYNTHESISE,
    SourceFlags,
    plan_slot,
    reach,
)
from vsdain.filter.plan import FramePlan as SlotPlan
from vsdain.filter.timing import FrameTiming

NTSC_FILM = Fraction(24000, 1001)


def flags_of(kept: list[bool], cuts: frozenset[int] = frozenset()):
    """flags(k) for a clip whose frame k is kept when kept[k]; a cut lies before each frame in
    ``cuts`` (which are kept, as the detector keeps them)."""

    def flags(k: int) -> SourceFlags:
        return SourceFlags(kept[k] or k in cuts, k in cuts)

    return flags


def cadence(holds: list[int]) -> list[bool]:
    """kept flags of drawings held for holds[i] frames each."""
    return [j == 0 for hold in holds for j in range(hold)]


def plans(kept, multi, max_run=3, cuts=frozenset()):
    timing = FrameTiming.from_multi(len(kept), NTSC_FILM, multi)
    flags = flags_of(kept, cuts)
    return [
        plan_slot(n * timing.step, flags, len(kept), max_run) for n in range(timing.output_length)
    ]


def synth(first, second, t):
    return SlotPlan(SYNTHESISE, first, second, Fraction(t))


def test_on_twos_every_slot_moves_between_the_drawings():
    result = plans(cadence([2, 2, 2]), 2)
    assert result[:8] == [
        SlotPlan(SOURCE, 0),
        synth(0, 2, Fraction(1, 4)),
        synth(0, 2, Fraction(1, 2)),  # the duplicate's own slot gets new content
        synth(0, 2, Fraction(3, 4)),
        SlotPlan(SOURCE, 2),
        synth(2, 4, Fraction(1, 4)),
        synth(2, 4, Fraction(1, 2)),
        synth(2, 4, Fraction(3, 4)),
    ]
    # The last drawing has no next one: its run reaches the end and is held.
    assert result[8:] == [
        SlotPlan(SOURCE, 4),
        SlotPlan(REPEAT, 4),
        SlotPlan(SOURCE, 5),
        SlotPlan(REPEAT, 5),
    ]


def test_on_threes_t_advances_by_sixths():
    result = plans(cadence([3, 3]), 2)
    assert result[:6] == [SlotPlan(SOURCE, 0)] + [synth(0, 3, Fraction(k, 6)) for k in range(1, 6)]
    assert result[6] == SlotPlan(SOURCE, 3)


def test_mixed_twos_and_threes_keep_each_drawing_at_its_true_position():
    kept = cadence([2, 3, 2, 1])
    result = plans(kept, 1 + 1)
    assert result[0] == SlotPlan(SOURCE, 0)
    assert result[4] == SlotPlan(SOURCE, 2)
    assert result[10] == SlotPlan(SOURCE, 5)
    assert result[2] == synth(0, 2, Fraction(1, 2))
    assert [result[n] for n in range(5, 10)] == [synth(2, 5, Fraction(k, 6)) for k in range(1, 6)]
    assert result[13] == synth(5, 7, Fraction(3, 4))


def test_without_duplicates_the_mapping_is_the_plain_timing():
    timing = FrameTiming(7, NTSC_FILM, Fraction(60000, 1001))
    flags = flags_of([True] * 7)
    for n in range(timing.output_length):
        slot = timing.slot(n)
        plan = plan_slot(n * timing.step, flags, 7, 3)
        if slot.is_source:
            assert plan == SlotPlan(SOURCE, slot.left)
        elif slot.left == 6:
            assert plan == SlotPlan(REPEAT, 6)
        else:
            assert plan == synth(slot.left, slot.left + 1, slot.t)


def test_t_is_exact_at_film_to_ntsc_rates():
    timing = FrameTiming(9, NTSC_FILM, Fraction(60000, 1001))
    kept = cadence([3, 3, 3])
    plan = plan_slot(4 * timing.step, flags_of(kept), 9, 3)  # position 8/5
    assert plan == synth(0, 3, Fraction(8, 15))


def test_a_run_longer_than_max_run_is_a_still_hold():
    # Drawing 0 held 6 frames (5 duplicates), then drawing 6 on twos.
    kept = cadence([6, 2, 2])
    result = plans(kept, 2, max_run=3)
    for k in range(5):
        assert result[2 * k] == SlotPlan(SOURCE, k)
        assert result[2 * k + 1] == SlotPlan(REPEAT, k)
    # The hold ends with the change to drawing 6, interpolated as without deduplication.
    assert result[10] == SlotPlan(SOURCE, 5)
    assert result[11] == synth(5, 6, Fraction(1, 2))
    assert result[12] == SlotPlan(SOURCE, 6)
    assert result[13] == synth(6, 8, Fraction(1, 4))
    # With a longer max_run the same run is one moving pair.
    assert plans(kept, 2, max_run=5)[3] == synth(0, 6, Fraction(1, 4))


def test_no_pair_spans_a_cut():
    # Drawing 0 on twos, then a cut before frame 2.
    kept = cadence([2, 2, 2])
    result = plans(kept, 2, cuts=frozenset({2}))
    assert result[:4] == [
        SlotPlan(SOURCE, 0),
        SlotPlan(REPEAT, 0),
        SlotPlan(SOURCE, 1),
        SlotPlan(REPEAT, 1),
    ]
    assert result[4] == SlotPlan(SOURCE, 2)
    assert result[5] == synth(2, 4, Fraction(1, 4))


def test_a_cut_on_a_would_be_duplicate_keeps_that_frame():
    kept = cadence([4, 2])
    result = plans(kept, 2, cuts=frozenset({2}))
    # Another detector's cut mark on frame 2 makes it a kept frame that no pair reaches across.
    assert result[:4] == [
        SlotPlan(SOURCE, 0),
        SlotPlan(REPEAT, 0),
        SlotPlan(SOURCE, 1),
        SlotPlan(REPEAT, 1),
    ]
    assert result[4] == SlotPlan(SOURCE, 2)
    assert result[5] == synth(2, 4, Fraction(1, 4))


def test_only_frames_in_the_window_are_read():
    kept = cadence([2, 3, 2, 7, 2, 3, 3, 2])
    length = len(kept)
    timing = FrameTiming.from_multi(length, NTSC_FILM, 3)
    for max_run in (1, 2, 3, 6):
        for n in range(timing.output_length):
            position = n * timing.step
            here = position.numerator // position.denominator
            allowed = {here + d for d in reach(max_run, 1)}
            read = []

            def flags(k, read=read):
                read.append(k)
                return SourceFlags(kept[k], False)

            plan_slot(position, flags, length, max_run)
            assert set(read) <= allowed, (max_run, n)


def test_positions_outside_the_clip_are_refused():
    with pytest.raises(ValueError, match="outside"):
        plan_slot(Fraction(5), flags_of([True] * 5), 5, 3)
