#!/usr/bin/env python
"""Run a trained kpext model on images or a video and draw boxes and skeletons.

    # images: files, globs or folders; one picture per input into the output folder
    python projects/PoseEstimation/demo.py --config-file output/demo/config.yaml \\
        --input 'datasets/synthetic/val/images/00000[1-4].jpg' --output out/ \\
        MODEL.WEIGHTS output/demo/model_final.pth

    # an exported model (export_model.py --format onnx) on onnxruntime, no weights needed
    python projects/PoseEstimation/demo.py --config-file CFG --onnx model.onnx \\
        --input DIR --output out/

    # a video: tracked (--tracker, default kalman-oks) and smoothed people, drawn into
    # out/walk.mp4, poses in out/walk.jsonl
    python projects/PoseEstimation/demo.py --config-file CFG --video-input walk.mp4 \\
        --output out/ MODEL.WEIGHTS model_final.pth

Trailing ``KEY VALUE`` pairs override the config (put them last, after
``--output``). Detections are followed by pose NMS (``--pose-nms``), which
drops a second detection of the same person (OKS above 0.5 with a better one). For a video,
the JSON-lines file has one line per frame:
``{"frame", "time", "persons": [{"track_id", "bbox": [x, y, w, h], "score",
"keypoints": [x, y, s] * K, "category_id": 1}]}`` with keypoints in COCO's
pixel-index convention (Detectron2's coordinates minus 0.5). A frame that
cannot be decoded is reported on stderr and written as the previous drawn
frame (black if none came before), so the output has as many frames as the
input; its JSON line has no persons and ``"decoded": false``.

Bad input (a missing file, an unreadable image, a video that cannot be opened,
a config without weights, weights that do not fit the model the config builds: the
error names the parameters and the ``config.yaml`` saved beside the weights) stops
with a one-line error and exit status 1; the
video and JSON lines are written under temporary names and renamed only when
complete.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from typing import List, Optional, Sequence

import cv2
import tqdm

import kpext  # noqa: F401  (registers kpext heads and datasets; must come before model code)
from kpext.data.keypoint_metadata import keypoint_metadata_from_category, model_oks_sigmas
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_SKELETON
from kpext.engine.inference import check_inference_weights, load_inference_cfg, one_line
from kpext.engine.predictor import KpextPredictor
from kpext.export import ExportError, OnnxPredictor
from kpext.modeling.postprocess import POSE_NMS_METHODS
from kpext.video.pipeline import (
    Predictor,
    VideoError,
    VideoPoseRunner,
    VideoSource,
    draw_tracked_persons,
    exit_on_sigterm,
    jsonl_path_for,
    with_pose_nms,
    write_pose_video,
)
from kpext.video.tracker_choice import (
    DEFAULT_MAX_AGE,
    DEFAULT_TRACKER,
    TRACKERS,
    build_tracker,
    min_detection_score,
)
from kpext.video.tracking import TRACK_MATCH_METHODS, KeypointSmoother
from kpext.visualization import write_prediction_picture

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.data.catalog import Metadata

MAX_REPORTED_FRAMES = 20  # undecodable frames reported one by one; more are summed up at the end
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# a Detectron2 config key such as MODEL.WEIGHTS: where trailing overrides start
_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


class DemoError(Exception):
    """Bad input or output: reported as one line on stderr, exit status 1."""


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Draw a kpext keypoint model's predictions on images or a video.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="model config (yaml)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", nargs="+", metavar="PATH", help="images: files, globs ('dir/*.jpg') or folders"
    )
    source.add_argument("--video-input", metavar="VIDEO", help="a video file")
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="a folder (one picture per image, or <video name>.mp4), "
        "or a file for a single image or a video",
    )
    parser.add_argument(
        "--onnx",
        metavar="MODEL.onnx",
        help="run this exported model (export_model.py) on onnxruntime instead of MODEL.WEIGHTS",
    )
    parser.add_argument(
        "--confidence-threshold", type=float, default=0.5, help="minimum person score"
    )
    parser.add_argument(
        "--smooth",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="One-Euro smoothing of video keypoints",
    )
    parser.add_argument(
        "--min-cutoff", type=float, default=1.0, help="One-Euro minimum cutoff (Hz): jitter at rest"
    )
    parser.add_argument(
        "--beta", type=float, default=0.02, help="One-Euro speed coefficient (per pixel/s): lag"
    )
    parser.add_argument(
        "--tracker",
        choices=TRACKERS,
        default=DEFAULT_TRACKER,
        help="video tracker: kalman-oks (Kalman-predicted poses, two-stage association, OKS "
        "and box IoU), greedy (greedy matching to each track's last pose), bytetrack "
        "(Roboflow trackers' ByteTrack on boxes; pip install 'kpext[tracking]'); "
        "docs/tracking.md compares them",
    )
    parser.add_argument(
        "--track-match",
        choices=TRACK_MATCH_METHODS,
        default="oks",
        help="how the greedy tracker matches people across frames",
    )
    parser.add_argument(
        "--max-age",
        type=int,
        default=None,
        help="frames a track may be missed and still continue (default: the tracker's, "
        + ", ".join(f"{name} {age}" for name, age in DEFAULT_MAX_AGE.items())
        + ")",
    )
    parser.add_argument(
        "--pose-nms",
        choices=POSE_NMS_METHODS,
        default="oks",
        help="drop duplicated poses of one person (OKS)",
    )
    parser.add_argument(
        "--pose-nms-threshold",
        type=float,
        default=0.5,
        help="OKS above which a pose is a duplicate",
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs, last"
    )
    return parser


def split_trailing_opts(args: argparse.Namespace) -> None:
    """Move config overrides swallowed by ``--input a.jpg MODEL.WEIGHTS w`` into ``args.opts``."""
    if args.opts or not args.input:
        return
    for i, item in enumerate(args.input):
        if _CONFIG_KEY.match(item) and not os.path.exists(item):
            args.input, args.opts = args.input[:i], args.input[i:]
            return


# ---------------------------------------------------------------------------
# Config and model
# ---------------------------------------------------------------------------


def detector_score_threshold(args: argparse.Namespace) -> float:
    """The model's score threshold: ``--confidence-threshold``, lowered for a video to what the
    tracker uses (the two-stage trackers continue tracks with less confident people; they
    start tracks only from ``--confidence-threshold`` on). With ``--onnx`` it stays
    ``--confidence-threshold``: an exported model gives no detection below the threshold it
    was exported at."""
    if args.video_input and not args.onnx:
        return min_detection_score(args.tracker, args.confidence_threshold)
    return args.confidence_threshold


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    """kpext's config: defaults + ``--config-file`` + trailing overrides, the score threshold
    (:func:`detector_score_threshold`)."""
    try:
        return load_inference_cfg(args.config_file, args.opts, detector_score_threshold(args))
    except ValueError as e:
        raise DemoError(str(e)) from None


def check_weights(cfg: CfgNode, config_file: str) -> None:
    """A model with random weights draws nonsense: require MODEL.WEIGHTS, as an existing file."""
    try:
        check_inference_weights(cfg, config_file)
    except ValueError as e:
        raise DemoError(str(e)) from None


def build_predictor(cfg: CfgNode, args: argparse.Namespace) -> Predictor:
    """KpextPredictor (BGR image -> {"instances": ...}; refuses weights that do not fit the
    model), or the --onnx model; then pose NMS (``--pose-nms``)."""
    if args.onnx:
        try:
            predictor = OnnxPredictor(args.onnx, cfg)
        except ExportError as e:  # missing, corrupt, or exported at a higher score threshold
            raise DemoError(str(e)) from None
        sigmas = model_oks_sigmas(cfg)
        return with_pose_nms(predictor, sigmas, args.pose_nms, args.pose_nms_threshold)
    try:
        predictor = KpextPredictor(cfg, args.config_file)
    except ValueError as e:  # weights that do not fit the model, an unreadable file
        raise DemoError(str(e)) from None
    except Exception as e:  # a model the config cannot build
        raise DemoError(f"cannot load the model from {cfg.MODEL.WEIGHTS}: {one_line(e)}") from None
    return with_pose_nms(predictor, model_oks_sigmas(cfg), args.pose_nms, args.pose_nms_threshold)


def keypoint_metadata(cfg: CfgNode) -> Metadata:
    """The first test set's metadata (keypoint names, skeleton colours), else COCO's person set
    for 17 keypoints."""
    if cfg.DATASETS.TEST:
        metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        if metadata.get("keypoint_names"):
            return metadata
    num_keypoints = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
    if num_keypoints == len(COCO_PERSON_KEYPOINT_NAMES):
        category = {"keypoints": list(COCO_PERSON_KEYPOINT_NAMES), "skeleton": COCO_PERSON_SKELETON}
    else:
        category = {"keypoints": [f"keypoint_{i}" for i in range(num_keypoints)]}
    return Metadata(
        name="kpext_demo", thing_classes=["person"], **keypoint_metadata_from_category(category)
    )


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def _images_in_folder(folder: str) -> List[str]:
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [os.path.join(folder, n) for n in names]


def expand_inputs(patterns: Sequence[str]) -> List[str]:
    """Image paths from files, globs and folders, in the given order (globs and folders sorted).

    Raises DemoError for a missing file, a glob or folder without images, or a
    file OpenCV cannot decode (checked from its header, before any work).
    """
    paths: List[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found = _images_in_folder(pattern)
            if not found:
                raise DemoError(f"no image ({', '.join(IMAGE_EXTENSIONS)}) in folder {pattern}")
        elif glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not found:
                raise DemoError(f"no file matches {pattern}")
        elif os.path.isfile(pattern):
            found = [pattern]
        else:
            raise DemoError(f"input file not found: {pattern}")
        paths.extend(found)
    for path in paths:
        if not cv2.haveImageReader(path):
            raise DemoError(f"cannot read image {path}: not an image format OpenCV can decode")
    return paths


def _is_folder_output(output: str) -> bool:
    return (
        os.path.isdir(output) or output.endswith(("/", os.sep)) or not os.path.splitext(output)[1]
    )


def image_output_paths(inputs: Sequence[str], output: str) -> List[str]:
    """One output picture per input: ``output/<input name>``, or ``output`` itself for one input."""
    if not _is_folder_output(output):
        if len(inputs) != 1:
            raise DemoError(
                f"--output {output} is a file but there are {len(inputs)} inputs; give a folder"
            )
        return [output]
    outputs = [os.path.join(output, os.path.basename(p)) for p in inputs]
    seen = {}
    for source, target in zip(inputs, outputs):
        if target in seen:
            raise DemoError(f"inputs {seen[target]} and {source} would both be written to {target}")
        seen[target] = source
    return outputs


def run_on_images(
    cfg: CfgNode, predictor: Predictor, inputs: Sequence[str], outputs: Sequence[str]
) -> None:
    metadata = keypoint_metadata(cfg)

    def predict(image):
        return predictor(image)["instances"]

    for source, target in tqdm.tqdm(list(zip(inputs, outputs)), desc="images", unit="img"):
        try:
            instances = write_prediction_picture(predict, source, target, metadata, cfg)
        except OSError as e:  # unreadable image (FileNotFoundError), unwritable picture
            raise DemoError(str(e)) from None
        tqdm.tqdm.write(f"{source}: {len(instances)} people -> {target}")


# ---------------------------------------------------------------------------
# Video
# ---------------------------------------------------------------------------


def video_output_path(video_input: str, output: str) -> str:
    """``output`` itself, or ``output/<video name>.mp4`` when it is a folder."""
    if _is_folder_output(output):
        return os.path.join(output, os.path.splitext(os.path.basename(video_input))[0] + ".mp4")
    return output


def build_runner(
    cfg: CfgNode, predictor, args: argparse.Namespace, fps: float, metadata
) -> VideoPoseRunner:
    """Tracker (``--tracker``) and (optionally) smoother set up from the command line."""
    sigmas = model_oks_sigmas(cfg)
    max_age = DEFAULT_MAX_AGE[args.tracker] if args.max_age is None else args.max_age
    try:
        tracker = build_tracker(
            args.tracker,
            score_threshold=args.confidence_threshold,
            max_age=max_age,
            sigmas=sigmas,
            match=args.track_match,
            fps=fps,
        )
    except ImportError as e:  # bytetrack without its optional dependency
        raise DemoError(str(e)) from None
    smoother = None
    if args.smooth:
        smoother = KeypointSmoother(
            min_cutoff=args.min_cutoff,
            beta=args.beta,
            freq=fps,
            score_threshold=cfg.TEST.KPEXT.VIS_KEYPOINT_THRESHOLD,
            max_age=max_age,
        )
    return VideoPoseRunner(
        predictor,
        fps=fps,
        tracker=tracker,
        smoother=smoother,
        score_threshold=min_detection_score(args.tracker, args.confidence_threshold),
    )


def run_on_video(
    cfg: CfgNode, predictor, source: VideoSource, output: str, args: argparse.Namespace
) -> None:
    metadata = keypoint_metadata(cfg)
    if source.fps != source.declared_fps:
        print(
            f"warning: {source.path} declares no frame rate; writing {source.fps:g} fps",
            file=sys.stderr,
        )
    runner = build_runner(cfg, predictor, args, source.fps, metadata)
    threshold = cfg.TEST.KPEXT.VIS_KEYPOINT_THRESHOLD

    def draw(result):
        return draw_tracked_persons(result.image, result.persons, metadata, threshold)

    def report_undecodable(index: int) -> None:
        reported.append(index)
        if (
            len(reported) <= MAX_REPORTED_FRAMES
        ):  # a truncated file would report every missing frame
            tqdm.tqdm.write(
                f"warning: frame {index} of {source.path} could not be decoded; "
                "wrote the previous frame instead",
                file=sys.stderr,
            )

    reported: List[int] = []

    results = tqdm.tqdm(
        runner.run(source), total=source.frame_count or None, desc="video", unit="frame"
    )
    try:
        summary = write_pose_video(
            results,
            output,
            source.fps,
            source.size,
            draw,
            jsonl_path_for(output),
            report_undecodable,
        )
    except VideoError as e:
        raise DemoError(f"{source.path}: {e}") from None
    finally:
        results.close()
    if len(reported) > MAX_REPORTED_FRAMES:
        print(
            f"warning: {len(reported)} frames of {source.path} could not be decoded in all",
            file=sys.stderr,
        )
    skipped = (
        f", {len(summary.undecodable_frames)} undecodable" if summary.undecodable_frames else ""
    )
    print(
        f"wrote {summary.video_path} ({summary.num_frames} frames{skipped}, {source.fps:g} fps, "
        f"{source.width}x{source.height}, {len(summary.track_ids)} tracks) and {summary.jsonl_path}"
    )


# ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    """Check everything that can be checked cheaply, then build the model and run it."""
    cfg = setup_cfg(args)
    if not args.onnx:  # an exported model holds its weights
        check_weights(cfg, args.config_file)
    if args.video_input:
        try:
            source = VideoSource(args.video_input)
        except VideoError as e:
            raise DemoError(str(e)) from None
        output = video_output_path(args.video_input, args.output)
        run_on_video(cfg, build_predictor(cfg, args), source, output, args)
    else:
        inputs = expand_inputs(args.input)
        outputs = image_output_paths(inputs, args.output)
        run_on_images(cfg, build_predictor(cfg, args), inputs, outputs)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    split_trailing_opts(args)
    try:
        with exit_on_sigterm():
            run(args)
    except DemoError as e:
        raise SystemExit(f"demo.py: error: {e}") from None


if __name__ == "__main__":
    main()
