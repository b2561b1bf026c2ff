"""The filter options a render passes to :func:`vsdain.Interpolate`, in one table.

The table builds the command's options (flag, type, help) and names the keywords that
:func:`vsdain.render.render` accepts for the filter; the values are checked by the filter's
own :func:`vsdain.filter.arguments.check_arguments`, called here with Interpolate's defaults
for what is not given, so there is no second copy of the validation or of the defaults.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import vapoursynth as vs

if TYPE_CHECKING:
    from ..filter.arguments import Settings


@dataclass(frozen=True)
class FilterOption:
    """One of Interpolate's keywords as ``vsdain render`` offers it.

    name: the keyword; flag: the command's option; parse: turns the option's text into the
    value (None for a switch, which sets ``switch`` when present); help: for ``--help``.
    """

    name: str
    flag: str
    help: str
    parse: Callable[[str], object] | None = None
    switch: object = None
    metavar: str | None = None


def _filter_defaults() -> dict[str, object]:
    from ..filter.dedup import DEFAULT_MAX_RUN, DEFAULT_THRESHOLD
    from ..filter.scenecut import DEFAULT_THRESHOLD as SC_THRESHOLD
    from ..model.tiling import MIN_TILE

    return {
        "dedup_threshold": DEFAULT_THRESHOLD,
        "dedup_max_run": DEFAULT_MAX_RUN,
        "sc_threshold": SC_THRESHOLD,
        "min_tile": MIN_TILE,
    }


def filter_options() -> tuple[FilterOption, ...]:
    """The table. ``--fps NUM[/DEN]`` is not in it: it gives two keywords (fps_num and
    fps_den), and the command parses it itself."""
    default = _filter_defaults()
    return (
        FilterOption(
            "multi", "--multi", "output rate = source rate x N (default 2)", int, metavar="N"
        ),
        FilterOption(
            "weights", "--weights", "best.pth (default: as `vsdain info`)", str, metavar="PATH"
        ),
        FilterOption(
            "device", "--device", "cpu, cuda or cuda:N (default: cuda when available)", str
        ),
        FilterOption(
            "precision",
            "--precision",
            "what the network computes in: float32, float16 (CUDA) or bfloat16 (default: "
            "float32; float16 on CUDA for half-float sources)",
            str,
            metavar="NAME",
        ),
        FilterOption(
            "matrix",
            "--matrix",
            "the YUV matrix, in resize's names (709, 170m, 470bg, 2020ncl, ...), replacing "
            "the frames' own (default: theirs; unlabelled: 709 from 600 lines up, else 170m)",
            str,
            metavar="NAME",
        ),
        FilterOption("sc", "--no-sc", "interpolate across scene cuts too", switch=False),
        FilterOption(
            "sc_threshold",
            "--sc-threshold",
            f"scene-cut threshold, a ratio > 1 (default {default['sc_threshold']}; higher "
            "finds fewer cuts)",
            float,
            metavar="RATIO",
        ),
        FilterOption(
            "dedup",
            "--dedup",
            "treat frames that repeat the one before (anime on twos, duplicated frames) as "
            "missing and interpolate through them",
            switch=True,
        ),
        FilterOption(
            "dedup_threshold",
            "--dedup-threshold",
            f"with --dedup: change score below which a frame is a duplicate (default "
            f"{default['dedup_threshold']}; higher finds more)",
            float,
            metavar="SCORE",
        ),
        FilterOption(
            "dedup_max_run",
            "--dedup-max-run",
            f"with --dedup: the longest run of duplicates interpolated; a longer one stays "
            f"still (default {default['dedup_max_run']})",
            int,
            metavar="N",
        ),
        FilterOption(
            "tile",
            "--tile",
            f"tiles of N pixels a side (>= {default['min_tile']}), 0 never tiles (default: "
            "automatic, from the memory)",
            int,
            metavar="N",
        ),
        FilterOption(
            "max_memory",
            "--max-memory",
            "MiB the network's features and work may use, >= 64 (default: what the device "
            "has free)",
            int,
            metavar="MIB",
        ),
    )


# Interpolate's keywords that render() takes: the table's and the two of --fps. Not clip,
# model (each worker loads its own network), fp16 (gone) or timeline (read from SOURCE).
RATE_KEYWORDS = ("fps_num", "fps_den")


def keyword_names() -> frozenset[str]:
    return frozenset(option.name for option in filter_options()) | frozenset(RATE_KEYWORDS)


def interpolate_arguments(clip: vs.VideoNode, keywords: Mapping[str, object]) -> dict[str, object]:
    """Every argument of Interpolate for ``clip`` and ``keywords``, its defaults filled in."""
    from ..filter.interpolate import Interpolate

    bound = inspect.signature(Interpolate).bind(clip, **keywords)
    bound.apply_defaults()
    return dict(bound.arguments)


def check_filter_options(clip: vs.VideoNode, keywords: Mapping[str, object]) -> Settings:
    """The filter's :class:`~vsdain.filter.arguments.Settings` for ``clip`` and
    ``keywords`` (Interpolate's defaults for the others), from the filter's own checks:
    raises the ``vs.Error`` that ``Interpolate(clip, **keywords)`` would, and loads nothing.
    """
    from ..filter.arguments import check_arguments

    arguments = interpolate_arguments(clip, keywords)
    positional, named = [], {}
    for name, parameter in inspect.signature(check_arguments).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            named[name] = arguments[name]
        else:
            positional.append(arguments[name])
    return check_arguments(*positional, **named)


def job_identity(clip: vs.VideoNode, keywords: Mapping[str, object]) -> dict[str, object]:
    """What the job key holds of the filter's arguments: all of them with the defaults
    filled in (an option given at its default keys the same job as one left out), and a
    timeline as a digest of its times."""
    arguments = interpolate_arguments(clip, keywords)
    del arguments["clip"]
    timeline = arguments.get("timeline")
    if timeline is not None and not isinstance(timeline, str):
        text = ",".join(str(Fraction(time)) for time in timeline)
        arguments["timeline"] = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return arguments
