"""build_keypoint_evaluator: OKS keypoint AP on the dataset's own keypoint set."""

import pytest
import torch

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.evaluation import build_keypoint_evaluator, dataset_oks_sigmas
from kpext_synth.people import SyntheticConfig, generate_split

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, BoxMode, Instances


@pytest.fixture(scope="module")
def val_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    cfg = SyntheticConfig(
        num_images=5, seed=3, width=128, height=128, max_people=3, min_person_height=40
    )
    json_file = generate_split(str(root), "val", cfg, show_progress=False)
    name = "kpext_test_eval_val"
    if name not in DatasetCatalog.list():
        register_keypoint_coco(name, json_file, str(root / "val" / "images"))
    return name


def predictions_from_ground_truth(record, shift: float = 0.0):
    """Instances whose boxes and keypoints are the record's ground truth (+ shift in x)."""
    annos = [a for a in record["annotations"] if not a.get("iscrowd", 0)]
    inst = Instances((record["height"], record["width"]))
    boxes = [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annos]
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.ones(len(annos))
    inst.pred_classes = torch.zeros(len(annos), dtype=torch.long)
    kp = torch.tensor([a["keypoints"] for a in annos], dtype=torch.float32).reshape(
        len(annos), -1, 3
    )
    kp[..., 0] += shift
    kp[..., 2] = 1.0  # scores
    inst.pred_keypoints = kp
    return inst


def evaluate(name, shift):
    cfg = get_cfg()
    add_kpext_config(cfg)
    evaluator = build_keypoint_evaluator(cfg, name, distributed=False)
    evaluator.reset()
    for record in DatasetCatalog.get(name):
        inputs = [
            {"image_id": record["image_id"], "height": record["height"], "width": record["width"]}
        ]
        evaluator.process(inputs, [{"instances": predictions_from_ground_truth(record, shift)}])
    return evaluator.evaluate()


def test_ground_truth_as_predictions_scores_full_keypoint_ap(val_dataset):
    results = evaluate(val_dataset, shift=0.0)
    assert results["keypoints"]["AP"] == pytest.approx(100.0)
    assert results["bbox"]["AP"] == pytest.approx(100.0)


def test_displaced_keypoints_lower_keypoint_ap_only(val_dataset):
    results = evaluate(val_dataset, shift=6.0)
    assert results["keypoints"]["AP"] < 60.0
    assert results["bbox"]["AP"] == pytest.approx(100.0)


def test_sigmas_come_from_the_dataset_or_the_config(val_dataset):
    assert dataset_oks_sigmas(val_dataset)[0] == pytest.approx(0.026)  # COCO's nose
    assert dataset_oks_sigmas(val_dataset, [0.1] * 17) == [0.1] * 17
    with pytest.raises(ValueError, match="17 keypoints"):
        dataset_oks_sigmas(val_dataset, [0.1] * 5)


def test_sigmas_of_detectron2_builtin_coco_come_from_its_names():
    sigmas = dataset_oks_sigmas("keypoints_coco_2017_val")
    assert (
        len(sigmas) == 17
        and sigmas[0] == pytest.approx(0.026)
        and sigmas[-1] == pytest.approx(0.089)
    )
