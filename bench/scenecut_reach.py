"""How far the scene-cut detector's neighbours should reach: cut scores on real footage at
several reaches, as shot and held on twos (each frame shown twice, as anime drawn on twos).

    .venv/bin/python bench/scenecut_reach.py            # needs ../shared/data/clips
    .venv/bin/python bench/scenecut_reach.py --reach 1 2 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

CLIPS = ("big_buck_bunny_0_30.webm", "chaplin.mp4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=Path("../shared/data/clips"))
    parser.add_argument("--reach", type=int, nargs="+", default=[1, 2, 4])
    arguments = parser.parse_args()

    import vapoursynth as vs

    from vsdain.filter.scenecut import SCORE_PROP, SceneCutDetector

    print("| clip | held | reach | cuts found | their scores | highest other pair |")
    print("|---|---|---:|---|---|---|")
    for name in CLIPS:
        clip = vs.core.bs.VideoSource(str(arguments.clips / name))
        twos = vs.core.std.Interleave([clip[::2], clip[::2]])
        for held, source in (("as shot", clip), ("on twos", twos)):
            for reach in arguments.reach:
                detector = SceneCutDetector(reach=reach)
                scores = [f.props[SCORE_PROP] for f in detector.scores(source).frames(close=True)]
                cuts = [k for k, score in enumerate(scores) if score >= detector.threshold]
                other = max(score for k, score in enumerate(scores) if k not in cuts)
                found = ", ".join(f"{scores[k]:.2f}" for k in cuts)
                print(f"| {name} | {held} | {reach} | {cuts} | {found} | {other:.2f} |", flush=True)


if __name__ == "__main__":
    main()
