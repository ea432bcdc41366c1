#!/usr/bin/env python
"""Count jumps or squats in a video of one exercising person.

    # run a trained model on the video
    python projects/RepCounter/count_reps.py \\
        --video-input squats.mp4 --output out/squats_count.mp4 \\
        --config-file output/demo/config.yaml MODEL.WEIGHTS output/demo/model_final.pth

    # or reuse the poses demo.py (or make_synthetic_video.py) wrote
    python projects/RepCounter/count_reps.py --keypoints-jsonl out/squats.jsonl \\
        [--video-input squats.mp4 --output ...]

Pipeline: poses per frame -> tracks (the main person is the longest track) ->
vertical hip or ankle signal (``--part``) -> hysteresis counter. Prints
``N repetitions ...``; with ``--output`` writes the video with the running
count and the main person's skeleton drawn on every frame, the poses of all
tracks as ``<output stem>.jsonl`` (model runs only) and a JSON summary
(``--summary``, default ``<output stem>.summary.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import tqdm

import kpext  # noqa: F401  (registers kpext heads and datasets; must come before model code)
from kpext.data.keypoint_metadata import model_oks_sigmas
from kpext.engine.inference import check_inference_weights, load_inference_cfg
from kpext.engine.predictor import KpextPredictor
from kpext.modeling.postprocess import POSE_NMS_METHODS
from kpext.video.pipeline import (
    FrameResult,
    VideoError,
    VideoPoseRunner,
    VideoSource,
    exit_on_sigterm,
    frame_to_jsonl_record,
    jsonl_path_for,
    persons_from_jsonl_record,
    read_pose_jsonl,
    with_pose_nms,
    write_pose_video,
)
from kpext.video.repcount import BODY_PARTS, RepetitionResult, analyse_repetitions
from kpext.video.tracker_choice import (
    DEFAULT_MAX_AGE,
    DEFAULT_TRACKER,
    TRACKERS,
    build_tracker,
    min_detection_score,
)
from kpext.video.tracking import TRACK_MATCH_METHODS, KeypointSmoother
from kpext.visualization import draw_skeletons


class CountError(Exception):
    """Bad input: reported as one line on stderr, exit status 1."""


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Count jumps or squats of the main person in a video.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--video-input", metavar="VIDEO", help="the video (needed to run the model or to draw)"
    )
    parser.add_argument(
        "--keypoints-jsonl", metavar="FILE", help="poses from demo.py instead of running a model"
    )
    parser.add_argument(
        "--config-file", metavar="FILE", help="model config (also gives the keypoint names)"
    )
    parser.add_argument(
        "--output", metavar="PATH", help="video with the running count: a file (.mp4) or a folder"
    )
    parser.add_argument(
        "--summary", metavar="FILE", help="JSON summary (default: next to --output)"
    )
    parser.add_argument(
        "--part", choices=BODY_PARTS, default="hip", help="hip: squats and jumps; ankle: jumps"
    )
    parser.add_argument(
        "--confidence-threshold", type=float, default=0.5, help="minimum person score"
    )
    parser.add_argument(
        "--keypoint-threshold", type=float, default=0.05, help="keypoints scoring less are ignored"
    )
    parser.add_argument(
        "--tracker",
        choices=TRACKERS,
        default=DEFAULT_TRACKER,
        help="video tracker (as demo.py's; docs/tracking.md compares them)",
    )
    parser.add_argument(
        "--track-match",
        choices=TRACK_MATCH_METHODS,
        default="oks",
        help="how the greedy tracker matches people",
    )
    parser.add_argument(
        "--smooth", action=argparse.BooleanOptionalAction, default=True, help="One-Euro smoothing"
    )
    parser.add_argument(
        "--pose-nms",
        choices=POSE_NMS_METHODS,
        default="oks",
        help="drop duplicated poses (OKS > 0.5)",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs, last"
    )
    return parser


# ---------------------------------------------------------------------------
# Poses: from a model run or from a JSONL file
# ---------------------------------------------------------------------------


def build_cfg(args: argparse.Namespace):
    """kpext config from ``--config-file`` and the trailing overrides."""
    try:
        # a model run feeds the tracker, which also takes less confident people (to continue
        # tracks only): the model's threshold is what the tracker uses
        threshold = args.confidence_threshold
        if args.video_input and not args.keypoints_jsonl:
            threshold = min_detection_score(args.tracker, threshold)
        return load_inference_cfg(args.config_file, args.opts, threshold)
    except ValueError as e:
        raise CountError(str(e)) from None


# Detectron2's builtin metadata of COCO's person keypoints (names and skeleton), registered on
# import.
COCO_KEYPOINTS_METADATA = "keypoints_coco_2017_val"


def keypoint_metadata_of(cfg):
    """Keypoint names and skeleton: the first test set's metadata, else COCO's person keypoints."""
    from detectron2.data import MetadataCatalog

    if cfg is not None and cfg.DATASETS.TEST:
        metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        if metadata.get("keypoint_names", None):
            return metadata
    return MetadataCatalog.get(COCO_KEYPOINTS_METADATA)


def build_runner(predictor, args: argparse.Namespace, sigmas, fps: float) -> VideoPoseRunner:
    """The tracker (``--tracker``) and One-Euro smoother (``--smooth``) around ``predictor``."""
    try:
        tracker = build_tracker(
            args.tracker,
            score_threshold=args.confidence_threshold,
            sigmas=sigmas,
            match=args.track_match,
            fps=fps,
        )
    except ImportError as e:  # bytetrack without its optional dependency
        raise CountError(str(e)) from None
    smoother = None
    if args.smooth:
        smoother = KeypointSmoother(
            freq=fps,
            score_threshold=args.keypoint_threshold,
            max_age=DEFAULT_MAX_AGE[args.tracker],
        )
    return VideoPoseRunner(
        predictor,
        fps=fps,
        tracker=tracker,
        smoother=smoother,
        score_threshold=min_detection_score(args.tracker, args.confidence_threshold),
    )


def run_model(cfg, source: VideoSource, args: argparse.Namespace) -> List[FrameResult]:
    """Detect, track and smooth every frame; the results keep no images (the video is read
    again to draw). Weights that do not fit the model stop it, naming the config to use."""
    try:
        check_inference_weights(cfg, args.config_file)
        model = KpextPredictor(cfg, args.config_file)
    except ValueError as e:
        raise CountError(str(e)) from None
    sigmas = model_oks_sigmas(cfg)
    runner = build_runner(with_pose_nms(model, sigmas, args.pose_nms), args, sigmas, source.fps)
    results = []
    for result in tqdm.tqdm(
        runner.run(source), total=source.frame_count or None, desc="poses", unit="frame"
    ):
        results.append(dataclasses.replace(result, image=None))
    return results


def results_from_records(records: Sequence[Dict[str, Any]], fps: float) -> List[FrameResult]:
    """One result per frame index 0..max from JSONL records (frames without a record have
    nobody)."""
    by_frame = {int(r["frame"]): r for r in records}
    num_frames = max(by_frame) + 1 if by_frame else 0
    results = []
    for i in range(num_frames):
        record = by_frame.get(i, {"persons": []})
        time = float(record.get("time", i / fps))
        results.append(
            FrameResult(
                i, time, None, persons_from_jsonl_record(record), record.get("decoded", True)
            )
        )
    return results


# ---------------------------------------------------------------------------
# Drawing the running count
# ---------------------------------------------------------------------------


def draw_count(
    result: FrameResult, count: int, main_track: Optional[int], metadata, threshold: float
) -> np.ndarray:
    """The frame with the main person's skeleton and the running count in the top-left corner."""
    image = result.image
    main = [p for p in result.persons if p.track_id == main_track]
    if main:
        image = draw_skeletons(image, main[0].keypoints[None], metadata, threshold)
    scale = max(image.shape[0], image.shape[1]) / 400.0
    text = f"reps: {count}"
    origin = (int(8 * scale) + 2, int(30 * scale) + 4)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, text, origin, font, scale, (0, 0, 0), max(1, int(4 * scale)), cv2.LINE_AA)
    cv2.putText(
        image, text, origin, font, scale, (255, 255, 255), max(1, int(2 * scale)), cv2.LINE_AA
    )
    return image


def write_count_video(
    source: VideoSource,
    results: Sequence[FrameResult],
    analysis: RepetitionResult,
    output: str,
    jsonl_path: Optional[str],
    metadata,
    threshold: float,
) -> None:
    """Read the video again and write it with the running count; frames past the poses keep
    the last count."""
    running = analysis.running
    final = int(running[-1]) if len(running) else 0

    def frames_with_results():
        for i, frame in enumerate(source):
            result = results[i] if i < len(results) else FrameResult(i, i / source.fps, None)
            yield dataclasses.replace(result, image=frame)

    def draw(result: FrameResult) -> np.ndarray:
        count = int(running[result.index]) if result.index < len(running) else final
        return draw_count(result, count, analysis.track_id, metadata, threshold)

    def report_undecodable(index: int) -> None:
        print(
            f"warning: frame {index} of {source.path} could not be decoded; "
            "wrote the previous frame",
            file=sys.stderr,
        )

    write_pose_video(
        frames_with_results(), output, source.fps, source.size, draw, jsonl_path, report_undecodable
    )


# ---------------------------------------------------------------------------


def output_paths(args: argparse.Namespace) -> Dict[str, Optional[str]]:
    video = args.output
    if video and (os.path.isdir(video) or not os.path.splitext(video)[1]):
        stem = os.path.splitext(os.path.basename(args.video_input or args.keypoints_jsonl))[0]
        video = os.path.join(video, stem + "_reps.mp4")
    summary = args.summary or (os.path.splitext(video)[0] + ".summary.json" if video else None)
    return {"video": video, "summary": summary}


def check_args(args: argparse.Namespace) -> None:
    if not args.keypoints_jsonl and not (args.video_input and args.config_file):
        raise CountError(
            "give --keypoints-jsonl, or --video-input with --config-file (and MODEL.WEIGHTS)"
        )
    if args.output and not args.video_input:
        raise CountError("--output draws on the video: give --video-input too")
    for path in (args.keypoints_jsonl, args.video_input):
        if path and not os.path.isfile(path):
            raise CountError(f"input file not found: {path}")


def run(args: argparse.Namespace) -> RepetitionResult:
    check_args(args)
    cfg = build_cfg(args) if args.config_file else None
    source = VideoSource(args.video_input) if args.video_input else None
    fps = source.fps if source is not None else 30.0
    if args.keypoints_jsonl:
        try:
            results = results_from_records(read_pose_jsonl(args.keypoints_jsonl), fps)
        except ValueError as e:
            raise CountError(str(e)) from None
    else:
        results = run_model(cfg, source, args)

    records = [frame_to_jsonl_record(r) for r in results]
    metadata = keypoint_metadata_of(cfg)
    names = list(metadata.keypoint_names)
    analysis = analyse_repetitions(
        records, names, args.part, score_threshold=args.keypoint_threshold
    )
    paths = output_paths(args)
    if paths["video"]:
        jsonl = None if args.keypoints_jsonl else jsonl_path_for(paths["video"])
        write_count_video(
            source, results, analysis, paths["video"], jsonl, metadata, args.keypoint_threshold
        )
    if paths["summary"]:
        summary = dict(
            analysis.to_json(),
            part=args.part,
            fps=fps,
            source=args.video_input or args.keypoints_jsonl,
        )
        os.makedirs(os.path.dirname(os.path.abspath(paths["summary"])), exist_ok=True)
        with open(paths["summary"], "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)

    if analysis.track_id is not None and analysis.frames_seen < 0.8 * len(results):
        print(
            f"warning: the main track was seen in only {analysis.frames_seen} "
            f"of {len(results)} frames; "
            "the person may have been split into several tracks and the count may be low",
            file=sys.stderr,
        )
    seen = f"track {analysis.track_id}, seen in {analysis.frames_seen} of {len(results)} frames"
    if analysis.track_id is None:
        seen = "nobody seen"
    print(f"{analysis.count} repetitions (part {args.part}, {seen})")
    for key in ("video", "summary"):
        if paths[key]:
            print(f"wrote {paths[key]}")
    return analysis


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        with exit_on_sigterm():
            run(args)
    except (CountError, VideoError) as e:
        raise SystemExit(f"count_reps.py: error: {e}") from None


if __name__ == "__main__":
    main()
