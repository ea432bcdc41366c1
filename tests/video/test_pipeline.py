"""Video pipeline with a fake predictor: frames, size and fps kept, stable track ids, COCO
coordinates, undecodable frames, and no half-written output."""

import json
import os
import signal

import cv2
import numpy as np
import pytest
import torch

from kpext.data.keypoint_metadata import oks_sigmas_for_count
from kpext.video.pipeline import (
    FrameResult,
    TrackedPerson,
    VideoError,
    VideoPoseRunner,
    VideoSource,
    draw_tracked_persons,
    exit_on_sigterm,
    frame_to_jsonl_record,
    jsonl_path_for,
    persons_from_jsonl_record,
    read_pose_jsonl,
    with_pose_nms,
    write_pose_video,
)
from kpext.video.tracking import KeypointSmoother

from detectron2.data import MetadataCatalog
from detectron2.structures import Boxes, Instances

SIZE = 128
FPS = 25.0
NUM_FRAMES = 30
NUM_KEYPOINTS = 17
STATIC_BOX = (5.0, 80.0, 35.0, 125.0)  # a second person who never moves
# where the keypoints sit inside a person's box, as fractions of its width and height
_GRID = np.random.default_rng(0).uniform(0.1, 0.9, size=(NUM_KEYPOINTS, 2))


def moving_square_top_left(t: int):
    return 40 + 2 * t, 10 + t


def write_moving_square_video(path, num_frames=NUM_FRAMES):
    """A white 24 x 40 rectangle moving right and down on a dark background."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (SIZE, SIZE))
    for t in range(num_frames):
        frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
        x, y = moving_square_top_left(t)
        frame[y : y + 40, x : x + 24] = 255
        writer.write(frame)
    writer.release()


def keypoints_in_box(box):
    x0, y0, x1, y1 = box
    xy = np.array([x0, y0]) + _GRID * np.array([x1 - x0, y1 - y0])
    return np.concatenate([xy, np.full((NUM_KEYPOINTS, 1), 0.9)], axis=1)


def make_instances(boxes, keypoints, scores, image_size=(SIZE, SIZE)):
    instances = Instances(image_size)
    instances.pred_boxes = Boxes(
        torch.tensor(np.asarray(boxes), dtype=torch.float32).reshape(-1, 4)
    )
    instances.scores = torch.tensor(scores, dtype=torch.float32)
    instances.pred_classes = torch.zeros(len(scores), dtype=torch.int64)
    instances.pred_keypoints = torch.tensor(np.asarray(keypoints), dtype=torch.float32).reshape(
        -1, NUM_KEYPOINTS, 3
    )
    return instances


class BrightRectanglePredictor:
    """Stands in for DefaultPredictor: the bright rectangle is one person, plus a static person.

    Detections come in a different order every other frame, as a detector's may.
    ``outputs`` keeps the N x K x 3 keypoints returned for each call (moving person first).
    """

    def __init__(self):
        self.outputs = []

    def __call__(self, image):
        ys, xs = np.nonzero(image[..., 1] > 128)
        moving = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        keypoints = np.stack([keypoints_in_box(moving), keypoints_in_box(STATIC_BOX)]).astype(
            np.float32
        )
        self.outputs.append((np.array(moving), keypoints.astype(np.float64)))
        order = [0, 1] if len(self.outputs) % 2 else [1, 0]
        boxes = np.array([moving, STATIC_BOX])[order]
        return {"instances": make_instances(boxes, keypoints[order], [0.9, 0.8])}


def read_back(path):
    capture = cv2.VideoCapture(str(path))
    props = (
        int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        capture.get(cv2.CAP_PROP_FPS),
    )
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return props, frames


@pytest.fixture(scope="module")
def square_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    write_moving_square_video(path)
    return path


def draw_with_skeletons(result):
    return draw_tracked_persons(
        result.image, result.persons, MetadataCatalog.get("kpext_synth_val"), 0.05
    )


def test_video_source_reads_size_fps_and_frames(square_video):
    source = VideoSource(str(square_video))
    assert source.size == (SIZE, SIZE)
    assert source.fps == pytest.approx(FPS)
    assert source.frame_count == NUM_FRAMES
    frames = list(source)
    assert len(frames) == NUM_FRAMES and all(
        f is not None and f.shape == (SIZE, SIZE, 3) for f in frames
    )


def test_pose_video_keeps_frames_size_fps_and_tracks(square_video, tmp_path):
    source = VideoSource(str(square_video))
    predictor = BrightRectanglePredictor()
    runner = VideoPoseRunner(
        predictor, fps=source.fps
    )  # no smoother: keypoints are the predictor's
    out = tmp_path / "out" / "square_pose.mp4"
    summary = write_pose_video(
        runner.run(source),
        str(out),
        source.fps,
        source.size,
        draw_with_skeletons,
        jsonl_path_for(str(out)),
    )

    assert summary.num_frames == NUM_FRAMES and summary.undecodable_frames == []
    (count, width, height, fps), frames = read_back(out)
    assert (count, width, height, len(frames)) == (NUM_FRAMES, SIZE, SIZE, NUM_FRAMES)
    assert fps == pytest.approx(FPS)
    assert sorted(os.listdir(out.parent)) == [
        "square_pose.jsonl",
        "square_pose.mp4",
    ]  # no temporaries left

    records = read_pose_jsonl(str(tmp_path / "out" / "square_pose.jsonl"))
    assert [r["frame"] for r in records] == list(range(NUM_FRAMES))
    assert [r["time"] for r in records] == pytest.approx([t / FPS for t in range(NUM_FRAMES)])
    moving_ids, static_ids = set(), set()
    for record, (moving_box, keypoints) in zip(records, predictor.outputs):
        assert len(record["persons"]) == 2
        for person in record["persons"]:
            assert person["category_id"] == 1 and len(person["keypoints"]) == 3 * NUM_KEYPOINTS
            kpts = np.array(person["keypoints"]).reshape(-1, 3)
            is_moving = person["bbox"][1] < 70
            expected = keypoints[0] if is_moving else keypoints[1]
            # COCO's pixel-index convention: Detectron2's coordinates minus 0.5, scores as they were
            np.testing.assert_allclose(kpts[:, :2], expected[:, :2] - 0.5, atol=1e-3)
            np.testing.assert_allclose(kpts[:, 2], expected[:, 2], atol=1e-3)
            if is_moving:
                x0, y0, x1, y1 = moving_box
                np.testing.assert_allclose(person["bbox"], [x0, y0, x1 - x0, y1 - y0], atol=0.01)
                moving_ids.add(person["track_id"])
            else:
                static_ids.add(person["track_id"])
    # one id per person for the whole video
    assert len(moving_ids) == 1 and len(static_ids) == 1 and moving_ids != static_ids
    assert summary.track_ids == sorted(moving_ids | static_ids)


def test_smoothing_keeps_ids_and_stays_close_to_the_detections(square_video):
    source = VideoSource(str(square_video))
    predictor = BrightRectanglePredictor()
    runner = VideoPoseRunner(predictor, fps=source.fps, smoother=KeypointSmoother(freq=source.fps))
    results = list(runner.run(source))
    moving_ids = {p.track_id for r in results for p in r.persons if p.box[1] < 70}
    assert len(moving_ids) == 1
    shifts = []
    for result, (_, raw) in zip(results, predictor.outputs):
        person = next(p for p in result.persons if p.box[1] < 70)
        shifts.append(np.abs(person.keypoints[:, :2] - raw[0, :, :2]).max())
    assert shifts[0] == 0.0  # a filter starts at its first sample
    assert 0.0 < max(shifts) < 10.0  # it lags a little behind a moving person


def test_undecodable_frames_keep_the_frame_count(tmp_path):
    """A fake frame source with broken frames: reported, replaced, counted."""
    gray_levels = [30 + 15 * t for t in range(12)]
    frames = [np.full((SIZE, SIZE, 3), g, np.uint8) for g in gray_levels]
    broken = {0, 4, 5}
    source = [None if t in broken else f for t, f in enumerate(frames)]

    def predictor(image):
        box = (20.0, 20.0, 60.0, 100.0)
        return {"instances": make_instances([box], [keypoints_in_box(box)], [0.9])}

    reported = []
    out = tmp_path / "broken.mp4"
    summary = write_pose_video(
        VideoPoseRunner(predictor, fps=FPS).run(source),
        str(out),
        FPS,
        (SIZE, SIZE),
        draw=lambda result: result.image,  # undrawn, to compare pixels
        jsonl_path=jsonl_path_for(str(out)),
        on_undecodable=reported.append,
    )
    assert reported == [0, 4, 5] and summary.undecodable_frames == [0, 4, 5]
    (count, _, _, _), written = read_back(out)
    assert count == len(written) == len(frames) == summary.num_frames

    # a broken frame is the previous written frame; black when nothing came before
    expected_levels = [0, 45, 60, 75, 75, 75] + gray_levels[6:]
    for frame, level in zip(written, expected_levels):
        assert (
            abs(float(frame.mean()) - level) < 7.0
        )  # levels are 15 apart; mp4v shifts them a little

    records = read_pose_jsonl(jsonl_path_for(str(out)))
    assert len(records) == len(frames)
    for record in records:
        if record["frame"] in broken:
            assert record["decoded"] is False and record["persons"] == []
        else:
            # the default tracker confirms a person on their second frame (frame 0 was broken)
            assert "decoded" not in record
            assert len(record["persons"]) == (0 if record["frame"] == 1 else 1)
    # the track survives the 2-frame gap
    assert {p["track_id"] for r in records for p in r["persons"]} == {1}


class _BrokenCapture:
    """cv2.VideoCapture stand-in: 8 declared frames, frame 3 fails to decode."""

    def __init__(self, path):
        self.index = 0

    def isOpened(self):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 32, cv2.CAP_PROP_FRAME_HEIGHT: 24, cv2.CAP_PROP_FPS: 0.0,
                cv2.CAP_PROP_FRAME_COUNT: 8}.get(prop, 0.0)  # fmt: skip

    def read(self):
        self.index += 1
        if self.index - 1 == 3 or self.index > 8:
            return False, None
        return True, np.zeros((24, 32, 3), np.uint8)

    def release(self):
        pass


def test_video_source_yields_none_for_a_broken_frame(tmp_path, monkeypatch):
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"not decoded: VideoCapture is replaced")
    monkeypatch.setattr(cv2, "VideoCapture", _BrokenCapture)
    source = VideoSource(str(path))
    assert source.size == (32, 24) and source.fps == 30.0  # no declared fps: the default
    frames = list(source)
    assert len(frames) == 8
    assert [t for t, f in enumerate(frames) if f is None] == [3]


def test_video_source_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="missing.mp4"):
        VideoSource(str(tmp_path / "missing.mp4"))
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match="notes.mp4"):
        VideoSource(str(text))


def test_failed_writes_leave_no_file(tmp_path):
    frames = [np.zeros((SIZE, SIZE, 3), np.uint8)] * 5

    def no_one(image):
        return {"instances": make_instances(np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 3)), [])}

    def failing_draw(result):
        if result.index == 3:
            raise RuntimeError("drawing failed")
        return result.image

    out = tmp_path / "out" / "v.mp4"
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_pose_video(
            VideoPoseRunner(no_one).run(frames),
            str(out),
            FPS,
            (SIZE, SIZE),
            failing_draw,
            jsonl_path_for(str(out)),
        )
    assert os.listdir(out.parent) == []

    with pytest.raises(VideoError, match="no frame could be decoded"):
        write_pose_video(
            VideoPoseRunner(no_one).run([None] * 4),
            str(out),
            FPS,
            (SIZE, SIZE),
            failing_draw,
            jsonl_path_for(str(out)),
        )
    assert os.listdir(out.parent) == []


def test_jsonl_records_round_trip_to_detectron2_coordinates():
    keypoints = keypoints_in_box((10.0, 20.0, 50.0, 100.0))
    person = TrackedPerson(7, np.array([10.0, 20.0, 50.0, 100.0]), 0.875, keypoints)
    record = frame_to_jsonl_record(FrameResult(3, 0.1, None, [person], decoded=True))
    assert json.loads(json.dumps(record)) == record
    assert record["frame"] == 3 and record["persons"][0]["bbox"] == [10.0, 20.0, 40.0, 80.0]
    assert record["persons"][0]["keypoints"][:2] == pytest.approx(
        list(keypoints[0, :2] - 0.5), abs=1e-3
    )
    (back,) = persons_from_jsonl_record(record)
    assert back.track_id == 7 and back.score == pytest.approx(0.875)
    np.testing.assert_allclose(back.box, person.box)
    np.testing.assert_allclose(back.keypoints, keypoints, atol=1e-3)


def test_pose_nms_drops_a_second_detection_of_one_person():
    person, other = (20.0, 20.0, 60.0, 100.0), (70.0, 10.0, 110.0, 90.0)
    wider = (15.0, 20.0, 75.0, 100.0)  # same keypoints, a box stretched by an arm: survives box NMS
    boxes = [person, wider, other]
    keypoints = [keypoints_in_box(person), keypoints_in_box(person), keypoints_in_box(other)]

    def predictor(image):
        return {"instances": make_instances(boxes, keypoints, [0.9, 0.8, 0.7])}

    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    sigmas = oks_sigmas_for_count(NUM_KEYPOINTS)
    assert with_pose_nms(predictor, sigmas, "none") is predictor
    kept = with_pose_nms(predictor, sigmas, "oks")(image)["instances"]
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7])
    with pytest.raises(ValueError, match="pose NMS"):
        with_pose_nms(predictor, sigmas, "boxes")


def test_sigterm_while_writing_deletes_the_temporaries(tmp_path):
    frames = [np.zeros((SIZE, SIZE, 3), np.uint8)] * 5
    before = signal.getsignal(signal.SIGTERM)

    def no_one(image):
        return {"instances": make_instances(np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 3)), [])}

    def terminated_at_frame_2(result):
        if result.index == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would
        return result.image

    out = tmp_path / "v.mp4"
    with pytest.raises(SystemExit) as stop:
        with exit_on_sigterm():
            write_pose_video(
                VideoPoseRunner(no_one).run(frames),
                str(out),
                FPS,
                (SIZE, SIZE),
                terminated_at_frame_2,
                jsonl_path_for(str(out)),
            )
    assert stop.value.code == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == before
