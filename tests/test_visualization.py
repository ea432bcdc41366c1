"""Pictures of keypoints: which detections a picture shows, and the skeleton drawer on any
keypoint set."""

import numpy as np
import pytest
import torch

from kpext.visualization import detections_to_draw, draw_keypoint_predictions, draw_skeletons

from detectron2.data.catalog import Metadata
from detectron2.structures import Boxes, Instances


def _instances(scores):
    inst = Instances((10, 10))
    inst.scores = torch.tensor(scores)
    inst.pred_boxes = Boxes(torch.arange(len(scores), dtype=torch.float32)[:, None].repeat(1, 4))
    return inst


def test_threshold_keeps_the_scores_at_or_above_it_best_first():
    kept = detections_to_draw(_instances([0.2, 0.9, 0.5, 0.7]), 0.5)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert kept.pred_boxes.tensor[:, 0].tolist() == [1.0, 3.0, 2.0]  # fields follow their scores


def test_max_detections_keeps_the_best_ones_even_below_a_zero_threshold():
    kept = detections_to_draw(_instances([0.1, 0.3, 0.2]), 0.0, max_detections=1)
    assert kept.scores.tolist() == pytest.approx([0.3])
    assert len(detections_to_draw(_instances([0.1, 0.3]), 0.5, max_detections=1)) == 0


# A keypoint set COCO does not know: a pen with a tip, a base and a clip.
PEN = {
    "keypoint_names": ["tip", "base", "clip"],
    "keypoint_connection_rules": [("tip", "base", (255, 0, 0)), ("base", "clip", (0, 255, 0))],
}
RED, GREEN, BLUE = 2, 1, 0  # BGR channels


def mostly(pixel, channel):
    """The pixel is drawn in that pure colour (lines are anti-aliased, so not exactly 255)."""
    others = [c for c in range(3) if c != channel]
    return pixel[channel] > 150 and max(pixel[c] for c in others) < 60


def _pen(clip_score):
    """One pen in Detectron2's continuous coordinates (pixel centres at .5): tip at pixel (10, 32),
    base at (50, 32), clip at (50, 10)."""
    return np.array([[[10.5, 32.5, 0.9], [50.5, 32.5, 0.8], [50.5, 10.5, clip_score]]])


def test_skeleton_lines_join_connected_visible_keypoints_of_any_set():
    picture = draw_skeletons(np.zeros((64, 64, 3), np.uint8), _pen(0.9), PEN, thickness=1)
    assert mostly(picture[32, 30], RED)  # on the tip-base line, in the rule's colour
    assert mostly(picture[21, 50], GREEN)  # on the base-clip line
    assert picture[32, 10].any() and picture[10, 50].any()  # the keypoints themselves
    assert not picture[50, 30].any()  # away from the skeleton nothing changed


def test_keypoints_at_or_below_the_threshold_and_their_lines_are_skipped():
    image = np.zeros((64, 64, 3), np.uint8)
    picture = draw_skeletons(image, _pen(0.05), PEN, keypoint_threshold=0.05, thickness=1)
    assert mostly(picture[32, 30], RED)  # tip and base are confident
    assert (
        not picture[21, 50].any() and not picture[10, 50].any()
    )  # the clip and its line are not drawn
    assert not image.any()  # the input is left alone


def test_coco_pixel_index_coordinates_and_hidden_keypoints_as_rings():
    pen = _pen(0.9)
    pen[..., :2] -= 0.5  # COCO's pixel indices
    picture = draw_skeletons(
        np.zeros((64, 64, 3), np.uint8), pen, PEN, 0.0, continuous=False, thickness=1
    )
    assert mostly(picture[32, 30], RED)

    unconnected = dict(PEN, keypoint_connection_rules=[])
    hidden = np.array([[False, False, True]])
    picture = draw_skeletons(np.zeros((64, 64, 3), np.uint8), pen, unconnected, 0.0, hidden=hidden,
                             continuous=False, thickness=1)  # fmt: skip
    assert mostly(picture[32, 50], RED)  # a visible keypoint: a filled dot (Detectron2's red)
    assert not picture[10, 50].any() and mostly(
        picture[8, 50], RED
    )  # a hidden one: a ring of radius 2
    assert not picture[32, 30].any()  # no rules, no lines


def test_boxes_labels_and_a_metadata_that_does_not_fit():
    box = np.array([[4.0, 4.0, 60.0, 60.0]])
    picture = draw_skeletons(np.zeros((64, 64, 3), np.uint8), _pen(0.9), PEN, boxes=box,
                             labels=["pen 90%"], colors=[(0, 0, 255)], thickness=1)  # fmt: skip
    assert mostly(picture[40, 4], BLUE)  # the box's left side, in the person's colour (BGR)
    with pytest.raises(ValueError, match="names 3 keypoints"):
        draw_skeletons(np.zeros((8, 8, 3), np.uint8), np.zeros((1, 4, 3)), PEN)


def test_pictures_of_predictions_draw_any_keypoint_set():
    inst = _instances([0.9])
    inst.pred_boxes = Boxes(torch.tensor([[4.0, 4.0, 60.0, 60.0]]))
    inst.pred_classes = torch.tensor([0])
    inst.pred_keypoints = torch.as_tensor(_pen(0.9), dtype=torch.float32)
    inst._image_size = (64, 64)
    metadata = Metadata(name="kpext_test_pens", thing_classes=["pen"], **PEN)
    picture = draw_keypoint_predictions(np.zeros((64, 64, 3), np.uint8), inst, metadata)
    assert picture.shape == (64, 64, 3) and mostly(picture[32, 30], RED)
    enlarged = draw_keypoint_predictions(
        np.zeros((64, 64, 3), np.uint8), inst, metadata, min_size=128
    )
    assert enlarged.shape == (128, 128, 3) and mostly(enlarged[64, 60], RED)


def test_predict_draw_write_in_one_step(tmp_path):
    """write_prediction_picture: read, predict, keep what the thresholds keep, draw, write
    whole; the picture is the one draw_keypoint_predictions makes."""
    from types import SimpleNamespace

    import cv2

    from kpext.visualization import write_prediction_picture

    image_path = str(tmp_path / "in.png")
    cv2.imwrite(image_path, np.full((10, 10, 3), 40, np.uint8))
    cfg = SimpleNamespace(
        TEST=SimpleNamespace(KPEXT=SimpleNamespace(VIS_KEYPOINT_THRESHOLD=0.05, VIS_MIN_SIZE=0))
    )
    seen = []

    def predict(image):
        seen.append(image.shape)
        return _instances([0.2, 0.9])

    drawn = write_prediction_picture(predict, image_path, str(tmp_path / "out.jpg"), PEN, cfg)
    assert seen == [(10, 10, 3)] and len(drawn) == 2  # no threshold: every detection
    kept = write_prediction_picture(
        predict, image_path, str(tmp_path / "out.jpg"), PEN, cfg, score_threshold=0.5
    )
    assert kept.scores.tolist() == pytest.approx([0.9])
    expected = draw_keypoint_predictions(cv2.imread(image_path), kept, PEN)
    assert cv2.imread(str(tmp_path / "out.jpg")).shape == expected.shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.jpg"]
    with pytest.raises(FileNotFoundError, match="cannot read image"):
        write_prediction_picture(predict, str(tmp_path / "none.png"), "x.jpg", PEN, cfg)
