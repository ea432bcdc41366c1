#!/usr/bin/env python
"""Render a synthetic video of a person doing N jumps or squats, with ground-truth keypoints.

    python projects/RepCounter/make_synthetic_video.py --kind squat --reps 5 \\
        --output /tmp/reps/squats.mp4
    python projects/RepCounter/make_synthetic_video.py --kind jump --reps 3 --walkers 2 \\
        --background cluttered --output /tmp/reps/jumps.mp4

The person is drawn with the synthetic dataset's renderer
(:func:`kpext_synth.scene.render_people`, in ``datasets/``), so a model trained on
``kpext_synth_train`` can see them. Besides the video (mp4v) it writes

* ``<stem>.jsonl``: the ground truth in ``demo.py``'s format, one line per frame,
  ``{"frame", "time", "persons": [{"track_id", "bbox", "score", "keypoints",
  "category_id"}]}``; track 1 is the exerciser, 2, 3, ... the walkers; keypoints
  in COCO pixel-index coordinates with the COCO visibility (0 outside the image,
  1 hidden, 2 visible) as third value, score 1;
* ``<stem>.truth.json``: kind, repetitions, frames, fps and size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Dict, Iterator, List, Tuple

import cv2
import numpy as np

# The renderer (datasets/kpext_synth) is part of the repository, not of the installed kpext.
_DATASETS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "datasets"
)
if _DATASETS not in sys.path:
    sys.path.append(_DATASETS)

# E402 below is expected: kpext_synth is importable only after the sys.path set-up above.
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES  # noqa: E402
from kpext_synth.background import draw_background  # noqa: E402
from kpext_synth.body import LimbPose, PersonSpec  # noqa: E402
from kpext_synth.colors import sample_person_colors  # noqa: E402
from kpext_synth.parts import build_person  # noqa: E402
from kpext_synth.scene import render_people  # noqa: E402

_ANKLES = [COCO_PERSON_KEYPOINT_NAMES.index(n) for n in ("left_ankle", "right_ankle")]
LEAD_FRAMES = 15  # standing still before the first and after the last repetition


# ---------------------------------------------------------------------------
# Motion: per-frame squat depth and jump lift
# ---------------------------------------------------------------------------


def _squat_rep(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(depth, lift) over one squat: down and up again, 0.85 to 1 of a full squat (similar depths,
    as the hip drop grows fast with the depth)."""
    n = int(rng.integers(30, 46))
    u = np.arange(n) / n
    depth = rng.uniform(0.85, 1.0) * (1.0 - np.cos(2 * np.pi * u)) / 2
    return depth, np.zeros(n)


def _jump_rep(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(depth, lift) over one jump: crouch, flight (0.15 to 0.25 of the height), landing crouch."""
    n = int(rng.integers(24, 34))
    u = np.arange(n) / n
    crouch = 0.35
    depth = np.where(u < 0.25, crouch * np.sin(np.pi * u / 0.25), 0.0)
    depth += np.where(u >= 0.75, crouch * np.sin(np.pi * (u - 0.75) / 0.25), 0.0)
    flight = (u >= 0.25) & (u < 0.75)
    lift = np.where(flight, rng.uniform(0.15, 0.25) * np.sin(np.pi * (u - 0.25) / 0.5), 0.0)
    return depth, lift


def exercise_timeline(
    kind: str, reps: int, rng: np.random.Generator
) -> Tuple[np.ndarray, np.ndarray]:
    """T squat depths (0 standing .. 1 full squat) and T jump lifts (fraction of the height)."""
    make_rep = {"squat": _squat_rep, "jump": _jump_rep}[kind]
    depths, lifts = [np.zeros(LEAD_FRAMES)], [np.zeros(LEAD_FRAMES)]
    for r in range(reps):
        depth, lift = make_rep(rng)
        rest = int(rng.integers(6, 17)) if r < reps - 1 else 0
        depths += [depth, np.zeros(rest)]
        lifts += [lift, np.zeros(rest)]
    depths.append(np.zeros(LEAD_FRAMES))
    lifts.append(np.zeros(LEAD_FRAMES))
    return np.concatenate(depths), np.concatenate(lifts)


# ---------------------------------------------------------------------------
# Poses
# ---------------------------------------------------------------------------


def _standing_on(spec: PersonSpec, x: float, ground_y: float, lift_px: float = 0.0) -> PersonSpec:
    """The spec moved so that its lower ankle is on ``ground_y`` (minus ``lift_px`` in the air)."""
    at_origin = build_person(dataclasses.replace(spec, center=(0.0, 0.0)))
    ankle_y = float(at_origin.keypoints[_ANKLES, 1].max())
    return dataclasses.replace(spec, center=(x, ground_y - ankle_y - lift_px))


def exerciser_spec(
    base: PersonSpec, depth: float, lift: float, x: float, ground_y: float
) -> PersonSpec:
    """``base`` squatting to ``depth`` and ``lift`` body heights off the ground.

    A squat swings the thighs forward and bends the knees further (shins lean
    forward), the trunk bends forward and the arms rise for balance; in the
    air the arms swing up.
    """
    thigh = 85.0 * depth
    leg = LimbPose(
        flexion=thigh, abduction=5.0 + 8.0 * depth, bend=max(3.0, 1.4 * thigh), twist=0.0
    )
    arm = LimbPose(
        flexion=min(170.0, 75.0 * depth + 600.0 * lift), abduction=12.0, bend=10.0, twist=20.0
    )
    spec = dataclasses.replace(
        base,
        left_leg=leg,
        right_leg=leg,
        left_arm=arm,
        right_arm=arm,
        trunk_pitch=3.0 + 30.0 * depth,
    )
    return _standing_on(spec, x, ground_y, lift * base.height)


def walker_spec(
    base: PersonSpec, frame: int, x: float, ground_y: float, stride_frames: float = 24.0
) -> PersonSpec:
    """``base`` mid-stride at ``frame``: legs and arms swing in antiphase."""
    swing = np.sin(2 * np.pi * frame / stride_frames)
    left_leg = LimbPose(
        flexion=25.0 * swing, abduction=3.0, bend=8.0 + 25.0 * max(0.0, -swing), twist=0.0
    )
    right_leg = LimbPose(
        flexion=-25.0 * swing, abduction=3.0, bend=8.0 + 25.0 * max(0.0, swing), twist=0.0
    )
    left_arm = LimbPose(flexion=-20.0 * swing, abduction=8.0, bend=15.0)
    right_arm = LimbPose(flexion=20.0 * swing, abduction=8.0, bend=15.0)
    spec = dataclasses.replace(
        base, left_leg=left_leg, right_leg=right_leg, left_arm=left_arm, right_arm=right_arm
    )
    return _standing_on(spec, x, ground_y)


# ---------------------------------------------------------------------------
# Scene
# ---------------------------------------------------------------------------


def plain_background(
    width: int, height: int, ground_y: float, rng: np.random.Generator
) -> np.ndarray:
    """A wall and a slightly darker floor."""
    wall = rng.uniform(120, 200, size=3)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = wall.astype(np.uint8)
    image[int(ground_y) :] = (0.7 * wall).astype(np.uint8)
    return image


def _walker_plans(
    num_walkers: int, num_frames: int, width: int, rng: np.random.Generator
) -> List[Dict[str, Any]]:
    """Where and when each walker crosses the picture (entering and leaving it)."""
    plans = []
    for w in range(num_walkers):
        direction = 1.0 if w % 2 == 0 else -1.0
        crossing = rng.uniform(0.5, 0.8) * num_frames  # frames from one edge to the other
        start = rng.uniform(0.0, 0.25) * num_frames
        plans.append(dict(direction=direction, speed=1.6 * width / crossing, start=start))
    return plans


def _walker_x(plan: Dict[str, Any], frame: int, width: int) -> float:
    travelled = plan["speed"] * (frame - plan["start"])
    return -0.3 * width + travelled if plan["direction"] > 0 else 1.3 * width - travelled


def _gt_person(track_id: int, ann: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "track_id": track_id,
        "bbox": [round(float(v), 2) for v in ann["bbox"]],
        "score": 1.0,
        "keypoints": [round(float(v), 2) for v in np.asarray(ann["keypoints"]).reshape(-1)],
        "category_id": 1,
    }


def render_video(args: argparse.Namespace) -> Iterator[Tuple[np.ndarray, Dict[str, Any]]]:
    """Each frame (H x W x 3 BGR) with its ground-truth JSON-lines record."""
    rng = np.random.default_rng(args.seed)
    width, height = args.size
    ground_y = 0.93 * height
    depths, lifts = exercise_timeline(args.kind, args.reps, rng)
    num_frames = len(depths)

    if args.background == "plain":
        background = plain_background(width, height, ground_y, rng)
    else:
        background = draw_background(
            rng, width, height, max_distractors=2, min_distractor_height=0.2 * height
        )
    exerciser = PersonSpec(
        center=(0.0, 0.0), height=0.62 * height, yaw=args.yaw, colors=sample_person_colors(rng)
    )
    plans = _walker_plans(args.walkers, num_frames, width, rng)
    walkers = [
        PersonSpec(
            center=(0.0, 0.0),
            height=0.42 * height,
            yaw=90.0 * plan["direction"],
            colors=sample_person_colors(rng),
        )
        for plan in plans
    ]

    for t in range(num_frames):
        people = [  # farthest first: the walkers pass behind the exerciser
            walker_spec(spec, t, _walker_x(plan, t, width), ground_y - 0.07 * height)
            for spec, plan in zip(walkers, plans)
        ]
        people.append(exerciser_spec(exerciser, depths[t], lifts[t], 0.5 * width, ground_y))
        canvas = background.copy()
        anns = render_people(canvas, people)
        track_ids = list(range(2, 2 + len(walkers))) + [1]
        persons = [
            _gt_person(tid, ann) for tid, ann in zip(track_ids, anns) if ann["num_keypoints"] > 0
        ]
        persons.sort(key=lambda p: p["track_id"])
        if args.noise > 0:  # camera noise, different in every frame
            noisy = canvas.astype(np.float32) + rng.normal(0.0, args.noise, canvas.shape).astype(
                np.float32
            )
            canvas = np.clip(noisy, 0, 255).astype(np.uint8)
        yield canvas, {"frame": t, "time": round(t / args.fps, 6), "persons": persons}


def write_outputs(args: argparse.Namespace) -> Dict[str, Any]:
    """Render and write the video, the ground-truth JSONL and the truth JSON; returns their
    paths and the frame count."""
    stem = os.path.splitext(args.output)[0]
    paths = {"video": args.output, "jsonl": stem + ".jsonl", "truth": stem + ".truth.json"}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    writer = cv2.VideoWriter(
        args.output, cv2.VideoWriter_fourcc(*"mp4v"), float(args.fps), tuple(args.size)
    )
    if not writer.isOpened():
        raise SystemExit(f"make_synthetic_video.py: error: cannot write video {args.output}")
    num_frames = 0
    with open(paths["jsonl"], "w", encoding="utf-8") as jsonl:
        for frame, record in render_video(args):
            writer.write(frame)
            jsonl.write(json.dumps(record, separators=(",", ":")) + "\n")
            num_frames += 1
    writer.release()
    truth = {
        "kind": args.kind,
        "repetitions": args.reps,
        "frames": num_frames,
        "fps": args.fps,
        "width": args.size[0],
        "height": args.size[1],
        "walkers": args.walkers,
        "seed": args.seed,
    }
    with open(paths["truth"], "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=2)
    return dict(paths, frames=num_frames)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Render a synthetic video of jumps or squats with ground-truth keypoints.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--kind", choices=("jump", "squat"), default="squat")
    parser.add_argument("--reps", type=int, default=5, help="number of repetitions")
    parser.add_argument("--output", required=True, help="output video (.mp4)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("W", "H"))
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--background", choices=("plain", "cluttered"), default="plain")
    parser.add_argument(
        "--walkers", type=int, default=0, help="people walking across behind the exerciser"
    )
    parser.add_argument(
        "--yaw",
        type=float,
        default=25.0,
        help="exerciser's body turn, degrees (0 = facing the camera)",
    )
    parser.add_argument("--noise", type=float, default=3.0, help="std of per-frame pixel noise")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main() -> None:
    args = get_parser().parse_args()
    if args.reps < 0 or args.walkers < 0:
        raise SystemExit("make_synthetic_video.py: error: --reps and --walkers must be >= 0")
    if min(args.size) < 64:
        raise SystemExit("make_synthetic_video.py: error: --size must be at least 64 x 64")
    written = write_outputs(args)
    print(
        f"wrote {written['video']} ({written['frames']} frames, {args.reps} {args.kind}s), "
        f"{written['jsonl']}, {written['truth']}"
    )


if __name__ == "__main__":
    main()
