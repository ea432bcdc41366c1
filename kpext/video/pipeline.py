"""Pose estimation on videos: detect per frame, track, smooth, draw, and write results.

The pieces, each usable on its own:

* :class:`VideoSource` reads frames with OpenCV and yields ``None`` for a frame
  that cannot be decoded mid-stream (so that frame indices stay aligned).
* :class:`VideoPoseRunner` takes any *predictor* callable (Detectron2's
  ``DefaultPredictor``, or a fake one in tests) mapping a BGR image to
  ``{"instances": Instances}`` with ``pred_boxes``, ``scores`` and
  ``pred_keypoints``; it gives every person a track id (by default
  :class:`KalmanOksTracker`, any tracker of :mod:`kpext.video.tracker_choice`)
  and smooths each track's keypoints (:class:`KeypointSmoother`), yielding one
  :class:`FrameResult` per frame with the people who are tracked.
* :func:`write_pose_video` draws the results and writes the video and its
  JSON-lines file under temporary names, renamed into place only once
  complete (a failure deletes them).
* :func:`frame_to_jsonl_record` turns a result into a JSON-friendly dict in the
  COCO result convention.

Coordinates: Detectron2 predicts *continuous* image coordinates (the top-left
corner of the image is (0, 0), the centre of pixel (i, j) is (i + 0.5, j +
0.5)). :class:`TrackedPerson` keeps them. The JSONL keypoints use COCO's
pixel-index convention (centre of pixel (i, j) is (i, j)), i.e. 0.5 less, as
Detectron2's ``COCOEvaluator`` writes them; boxes are ``[x, y, w, h]`` with
no shift, also as ``COCOEvaluator`` writes them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..io import atomic_path
from .tracker_choice import DEFAULT_TRACKER, VideoTracker, build_tracker
from .tracking import KeypointSmoother

__all__ = [
    "COCO_PIXEL_OFFSET",
    "Predictor",
    "VideoError",
    "VideoSource",
    "TrackedPerson",
    "FrameResult",
    "VideoPoseRunner",
    "with_pose_nms",
    "instances_to_arrays",
    "person_to_jsonl_record",
    "frame_to_jsonl_record",
    "jsonl_path_for",
    "draw_tracked_persons",
    "PoseVideoSummary",
    "write_pose_video",
    "persons_from_jsonl_record",
    "read_pose_jsonl",
    "exit_on_sigterm",
]

# Detectron2's continuous coordinates minus this = COCO's pixel-index coordinates.
COCO_PIXEL_OFFSET = 0.5
# Frame rate assumed when a video does not declare a usable one.
DEFAULT_FPS = 30.0

Predictor = Callable[[np.ndarray], Dict[str, Any]]


class VideoError(RuntimeError):
    """A video that cannot be opened, read or written."""


# ---------------------------------------------------------------------------
# Reading frames
# ---------------------------------------------------------------------------


class VideoSource:
    """Frames of a video file, read with OpenCV.

    Iterating yields one BGR ``H x W x 3`` uint8 array per frame, or ``None``
    for a frame that could not be decoded before the end of the stream (the
    frame count the container declares). Reading goes on after such a frame,
    so the number of items equals the declared frame count (or more, when
    frames follow past the declared count). Without a declared count, the
    first failed read ends the stream.

    Raises :class:`VideoError` when the file does not exist or cannot be opened.
    """

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise VideoError(f"video not found: {path}")
        self.path = path
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            capture.release()
            raise VideoError(f"cannot open video {path}")
        self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        self.declared_fps = fps
        self.fps = fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        capture.release()
        if self.width <= 0 or self.height <= 0:
            raise VideoError(f"cannot open video {path}: no frame size")

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) in pixels, as OpenCV's VideoWriter wants it."""
        return self.width, self.height

    def __iter__(self) -> Iterator[Optional[np.ndarray]]:
        capture = cv2.VideoCapture(self.path)
        try:
            index = 0
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    if index >= self.frame_count:
                        return  # the end of the stream
                    frame = None  # a broken frame inside the declared length
                yield frame
                index += 1
        finally:
            capture.release()


# ---------------------------------------------------------------------------
# Detection, tracking and smoothing
# ---------------------------------------------------------------------------


@dataclass
class TrackedPerson:
    """One person in one frame.

    box: 4 XYXY; keypoints: K x 3 (x, y, score), smoothed when smoothing is on;
    both in Detectron2's continuous image coordinates.
    """

    track_id: int
    box: np.ndarray
    score: float
    keypoints: np.ndarray


@dataclass
class FrameResult:
    """One frame's people.

    ``image`` is the BGR frame (H x W x 3 uint8), None when it could not be
    decoded or was not kept; ``decoded`` tells which.
    """

    index: int
    time: float
    image: Optional[np.ndarray]
    persons: List[TrackedPerson] = field(default_factory=list)
    decoded: bool = True


def instances_to_arrays(instances) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes N x 4 XYXY, scores N, keypoints N x K x 3) as float64 numpy arrays from
    Detectron2 Instances."""
    instances = instances.to("cpu")
    if not instances.has("pred_keypoints"):
        raise ValueError("the predictions have no pred_keypoints: is MODEL.KEYPOINT_ON set?")
    boxes = instances.pred_boxes.tensor.detach().numpy().astype(np.float64).reshape(-1, 4)
    scores = instances.scores.detach().numpy().astype(np.float64).reshape(-1)
    keypoints = instances.pred_keypoints.detach().numpy().astype(np.float64)
    return boxes, scores, keypoints


def with_pose_nms(
    predictor: Predictor, sigmas: Sequence[float], method: str = "oks", oks_threshold: float = 0.5
) -> Predictor:
    """``predictor`` followed by pose NMS of its instances
    (:func:`kpext.modeling.postprocess.apply_pose_nms`).

    Box NMS keeps two detections of one person whose boxes differ; they would
    become two tracks. ``sigmas`` are the K OKS sigmas; ``method`` is "none"
    (``predictor`` itself is returned), "oks" or "soft-oks".
    """
    from ..modeling.postprocess import POSE_NMS_METHODS, apply_pose_nms

    if method not in POSE_NMS_METHODS:
        raise ValueError(
            f"unknown pose NMS {method!r}; choose one of {', '.join(POSE_NMS_METHODS)}"
        )
    if method == "none":
        return predictor

    def predict_and_suppress(image: np.ndarray) -> Dict[str, Any]:
        outputs = dict(predictor(image))
        outputs["instances"] = apply_pose_nms(outputs["instances"], sigmas, method, oks_threshold)
        return outputs

    return predict_and_suppress


class VideoPoseRunner:
    """Runs a predictor frame by frame and gives each person a track id and smoothed keypoints.

    Args:
        predictor: BGR image (H x W x 3 uint8) -> ``{"instances": Instances}``.
        fps: frames per second; frame ``i`` is at time ``i / fps`` seconds.
        tracker: matches people across frames (any tracker of
            :mod:`kpext.video.tracker_choice`); default: ``build_tracker()``, the default
            tracker with its defaults. A detection it leaves untracked (None: a
            low-score detection that continues no track, a track not yet confirmed)
            is not in the results.
        smoother: One-Euro smoothing of each track's keypoints; None = raw keypoints.
        score_threshold: detections scoring below this are dropped before tracking.

    A frame that could not be decoded (``None``) still advances the tracker and
    the smoother's clock with no detections, so gaps count as time passing.
    """

    def __init__(
        self,
        predictor: Predictor,
        fps: float = DEFAULT_FPS,
        tracker: Optional[VideoTracker] = None,
        smoother: Optional[KeypointSmoother] = None,
        score_threshold: float = 0.0,
    ):
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.predictor = predictor
        self.fps = float(fps)
        self.tracker = tracker if tracker is not None else build_tracker(DEFAULT_TRACKER, fps=fps)
        self.smoother = smoother
        self.score_threshold = float(score_threshold)
        self._index = 0

    def reset(self) -> None:
        """Start a new video: forget tracks and filters, frame indices restart at 0."""
        self.tracker.reset()
        if self.smoother is not None:
            self.smoother.reset()
        self._index = 0

    def process(self, frame: Optional[np.ndarray]) -> FrameResult:
        """Detect, track and smooth the next frame (None: undecodable, no detections)."""
        index, time = self._index, self._index / self.fps
        self._index += 1
        if frame is None:
            boxes, scores, keypoints = np.zeros((0, 4)), np.zeros(0), np.zeros((0, 0, 3))
        else:
            boxes, scores, keypoints = instances_to_arrays(self.predictor(frame)["instances"])
        persons = self.track_detections(boxes, scores, keypoints, time)
        return FrameResult(index, time, frame, persons, decoded=frame is not None)

    def track_detections(
        self, boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, time: float
    ) -> List[TrackedPerson]:
        """Track and smooth one frame's detections (boxes N x 4 XYXY, scores N, keypoints
        N x K x 3) at ``time`` seconds: the people tracked, in detection order. What
        :meth:`process` does after the predictor; the tracking benchmark calls it directly."""
        keep = scores >= self.score_threshold
        boxes, scores, keypoints = boxes[keep], scores[keep], keypoints[keep]
        ids = self.tracker.update(keypoints, boxes, scores)
        tracked = [i for i, tid in enumerate(ids) if tid is not None]
        track_ids = [int(ids[i]) for i in tracked]
        boxes, scores, keypoints = boxes[tracked], scores[tracked], keypoints[tracked]
        if self.smoother is not None:
            keypoints = self.smoother.smooth(track_ids, keypoints, timestamp=time)
        return [
            TrackedPerson(tid, boxes[i].copy(), float(scores[i]), keypoints[i].copy())
            for i, tid in enumerate(track_ids)
        ]

    def run(self, frames: Iterable[Optional[np.ndarray]]) -> Iterator[FrameResult]:
        """Process a whole video (after :meth:`reset`); yields one result per frame, in order."""
        self.reset()
        for frame in frames:
            yield self.process(frame)


# ---------------------------------------------------------------------------
# JSON lines
# ---------------------------------------------------------------------------


def _rounded(values: Iterable[float], digits: int = 2) -> List[float]:
    return [round(float(v), digits) for v in values]


def person_to_jsonl_record(person: TrackedPerson) -> Dict[str, Any]:
    """One person as a COCO result dict plus its track id.

    ``bbox`` is [x, y, w, h]; ``keypoints`` is flat [x, y, score] * K with x, y
    in COCO's pixel-index convention (Detectron2's minus 0.5).
    """
    x0, y0, x1, y1 = (float(v) for v in person.box)
    keypoints = np.asarray(person.keypoints, dtype=np.float64).copy()
    keypoints[:, :2] -= COCO_PIXEL_OFFSET
    return {
        "track_id": int(person.track_id),
        "bbox": _rounded([x0, y0, x1 - x0, y1 - y0]),
        "score": round(float(person.score), 4),
        "keypoints": _rounded(keypoints.reshape(-1), 3),
        "category_id": 1,
    }


def frame_to_jsonl_record(result: FrameResult) -> Dict[str, Any]:
    """``{"frame", "time", "persons": [...]}``; an undecodable frame also gets
    ``"decoded": false``."""
    record: Dict[str, Any] = {
        "frame": result.index,
        "time": round(result.time, 6),
        "persons": [person_to_jsonl_record(p) for p in result.persons],
    }
    if not result.decoded:
        record["decoded"] = False
    return record


def jsonl_path_for(video_path: str) -> str:
    """The JSON-lines file written next to an output video:
    ``out/walk.mp4`` -> ``out/walk.jsonl``."""
    return os.path.splitext(video_path)[0] + ".jsonl"


def persons_from_jsonl_record(record: Dict[str, Any]) -> List[TrackedPerson]:
    """The inverse of :func:`frame_to_jsonl_record` for the people: back to Detectron2's
    coordinates."""
    persons = []
    for person in record["persons"]:
        x, y, w, h = (float(v) for v in person["bbox"])
        keypoints = np.asarray(person["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
        keypoints[:, :2] += COCO_PIXEL_OFFSET
        persons.append(
            TrackedPerson(
                int(person["track_id"]),
                np.array([x, y, x + w, y + h]),
                float(person["score"]),
                keypoints,
            )
        )
    return persons


def read_pose_jsonl(path: str) -> List[Dict[str, Any]]:
    """The per-frame records of a JSONL file written by :func:`write_pose_video`, in frame order.

    Raises ValueError naming the file and line for a line that is not a frame record.
    """
    records = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{line_number}: not JSON ({e.msg})") from None
            if not isinstance(record, dict) or "frame" not in record or "persons" not in record:
                raise ValueError(
                    f"{path}:{line_number}: expected an object with 'frame' and 'persons'"
                )
            records.append(record)
    records.sort(key=lambda r: r["frame"])
    return records


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


def draw_tracked_persons(
    image_bgr: np.ndarray,
    persons: Sequence[TrackedPerson],
    metadata,
    keypoint_threshold: float = 0.05,
) -> np.ndarray:
    """Boxes labelled with track id and score, and skeletons
    (:func:`kpext.visualization.draw_skeletons`).

    Returns a BGR image of the same size as ``image_bgr``; each track keeps one
    colour. Keypoints scoring at most ``keypoint_threshold`` are not drawn.
    """
    from ..visualization import draw_skeletons, instance_color

    if not persons:
        return np.ascontiguousarray(image_bgr).copy()
    return draw_skeletons(
        image_bgr,
        np.stack([p.keypoints for p in persons]),
        metadata,
        keypoint_threshold,
        boxes=np.stack([p.box for p in persons]),
        labels=[f"id {p.track_id} {p.score:.0%}" for p in persons],
        colors=[instance_color(p.track_id) for p in persons],
    )


# ---------------------------------------------------------------------------
# Writing video and JSON lines
# ---------------------------------------------------------------------------


@dataclass
class PoseVideoSummary:
    """What :func:`write_pose_video` wrote: frame count, undecodable frame indices, paths."""

    video_path: str
    jsonl_path: Optional[str]
    num_frames: int
    undecodable_frames: List[int]
    track_ids: List[int]


def _fit_frame(frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    if (frame.shape[1], frame.shape[0]) != tuple(size):
        frame = cv2.resize(frame, tuple(size))
    return frame


DrawFunction = Callable[[FrameResult], np.ndarray]


def write_pose_video(
    results: Iterable[FrameResult],
    video_path: str,
    fps: float,
    frame_size: Tuple[int, int],
    draw: DrawFunction,
    jsonl_path: Optional[str] = None,
    on_undecodable: Optional[Callable[[int], None]] = None,
    fourcc: str = "mp4v",
) -> PoseVideoSummary:
    """Draw each frame result and write the video, and optionally one JSON line per frame.

    Args:
        results: frame results in order (e.g. :meth:`VideoPoseRunner.run`).
        video_path: output video; its extension picks the container (.mp4).
        fps, frame_size: of the output, normally the input's; ``frame_size`` is (width, height).
        draw: ``draw(result) -> BGR image``, normally of ``result.image``'s size
            (other sizes are resized to ``frame_size``); e.g. with
            :func:`draw_tracked_persons`.
        jsonl_path: where to write :func:`frame_to_jsonl_record` lines (e.g.
            :func:`jsonl_path_for` ``(video_path)``); None = no JSONL.
        on_undecodable: called with the index of each result without an image.

    A result without an image (a frame that could not be decoded) is written
    as **the previous written frame** (a black frame when none came before),
    so the video has exactly one frame per result; its JSON line has no
    persons and ``"decoded": false``. The files are written under temporary
    names in the target folder and renamed into place at the end; on any
    error they are deleted and the error re-raised (:class:`VideoError` when
    the video cannot be written, or when no result had an image).
    """
    # Closed in reverse order: the JSONL file and the video writer, then the temporary
    # files renamed into place (or, on any error, deleted) by atomic_path.
    with contextlib.ExitStack() as files:
        tmp_video = files.enter_context(atomic_path(video_path))
        tmp_jsonl = files.enter_context(atomic_path(jsonl_path)) if jsonl_path else None
        writer = cv2.VideoWriter(
            tmp_video, cv2.VideoWriter_fourcc(*fourcc), float(fps), tuple(frame_size)
        )
        files.callback(writer.release)
        if not writer.isOpened():
            raise VideoError(f"cannot write video {video_path} (codec {fourcc})")
        jsonl = files.enter_context(open(tmp_jsonl, "w", encoding="utf-8")) if tmp_jsonl else None
        undecodable: List[int] = []
        track_ids = set()
        num_frames = 0
        previous = np.zeros((frame_size[1], frame_size[0], 3), dtype=np.uint8)
        for result in results:
            if result.image is not None:
                previous = _fit_frame(draw(result), frame_size)
            else:
                undecodable.append(result.index)
                if on_undecodable is not None:
                    on_undecodable(result.index)
            writer.write(previous)
            if jsonl is not None:
                jsonl.write(json.dumps(frame_to_jsonl_record(result), separators=(",", ":")) + "\n")
            track_ids.update(p.track_id for p in result.persons)
            num_frames += 1
        if num_frames == len(undecodable):
            # nothing but black frames: not an output to keep
            raise VideoError(f"no frame could be decoded ({num_frames} frames read)")
    return PoseVideoSummary(video_path, jsonl_path, num_frames, undecodable, sorted(track_ids))


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Meanwhile, SIGTERM raises SystemExit (status 143) instead of ending the process at once.

    :func:`write_pose_video` then deletes its temporary files on the way out,
    as it does on Ctrl-C. Does nothing outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
