"""The progress line of ``download`` (bytes) and of ``train``/``evaluate`` (steps)."""

from __future__ import annotations

import io

from vsdain.progress import Progress

MB = (1e6, "MB")


def clock():
    ticks = iter(range(1000))
    return lambda: float(next(ticks))


def test_bytes_with_a_known_total_print_a_line_per_tenth_and_the_end():
    stream = io.StringIO()
    with Progress(
        10_000_000, "download", every=1_000_000, unit=MB, stream=stream, clock=clock()
    ) as bar:
        for _ in range(6):
            bar.update(1_500_000)  # crosses one or two tenths each time: one line
        bar.update(1_000_000)
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "download 1.5/10.0 MB 15%",
        "download 3.0/10.0 MB 30%",
        "download 4.5/10.0 MB 45%",
        "download 6.0/10.0 MB 60%",
        "download 7.5/10.0 MB 75%",
        "download 9.0/10.0 MB 90%",
        "download 10.0/10.0 MB 100%",
    ]
    assert lines[-1].split("  ")[1].endswith(" MB/s") and "ETA 0:00" in lines[-1]


def test_bytes_of_unknown_total_show_no_eta_and_end_with_the_last_count():
    stream = io.StringIO()
    with Progress(
        None, "download", start=2_000_000, every=10_000_000, unit=MB, stream=stream, clock=clock()
    ) as bar:
        bar.update(5_000_000)
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("download 7.0 MB  ")
    assert "ETA" not in line and "%" not in line


def test_a_resumed_count_without_progress_prints_nothing():
    stream = io.StringIO()
    with Progress(10, "train", start=4, every=2, stream=stream, clock=clock()):
        pass
    assert stream.getvalue() == ""


def test_a_slow_count_still_prints_a_line_every_few_seconds():
    stream = io.StringIO()
    now = [0.0]
    with Progress(
        100_000_000,
        "download",
        every=10_000_000,
        every_seconds=10.0,
        unit=MB,
        stream=stream,
        clock=lambda: now[0],
    ) as bar:
        for seconds in (1.0, 2.0, 12.5, 13.0, 30.0):  # 64 kB pieces, far from the next tenth
            now[0] = seconds
            bar.update(64_000)
        now[0] = 31.0
    counts = [line.split("  ")[0] for line in stream.getvalue().splitlines()]
    # Lines at 12.5 s and at 30 s (10 s or more after the previous one); the close adds none,
    # since the line at 30 s already shows the last count.
    assert counts == ["download 0.2/100.0 MB 0%", "download 0.3/100.0 MB 0%"]
