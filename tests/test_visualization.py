"""Which detections a picture of predictions shows."""
import pytest
import torch

from detectron2.structures import Boxes, Instances

from kpext.visualization import detections_to_draw


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
