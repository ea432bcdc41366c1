"""model_oks_sigmas: the one sigma rule of the tools that run a model (demo.py's pose NMS and
tracker, count_reps.py): the dataset's sigmas when they fit the model, else by count."""

import pytest

from kpext import add_kpext_config
from kpext.data import dataset_oks_sigmas, model_oks_sigmas
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_OKS_SIGMAS

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog


def _cfg(num_keypoints, test=(), train=()):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = num_keypoints
    cfg.DATASETS.TEST, cfg.DATASETS.TRAIN = tuple(test), tuple(train)
    return cfg


def test_the_datasets_own_sigmas_when_they_fit_the_model(dataset_name):
    MetadataCatalog.get(dataset_name).set(
        keypoint_names=["a", "b", "c"], keypoint_oks_sigmas=[0.01, 0.02, 0.03]
    )
    assert model_oks_sigmas(_cfg(3, test=[dataset_name])) == [0.01, 0.02, 0.03]
    assert model_oks_sigmas(_cfg(3, train=[dataset_name])) == [0.01, 0.02, 0.03]
    assert model_oks_sigmas(_cfg(4, test=[dataset_name])) == [0.05] * 4  # another model


def test_without_a_dataset_17_keypoints_are_cocos_people():
    expected = [COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES]
    assert model_oks_sigmas(_cfg(17)) == pytest.approx(expected)
    assert model_oks_sigmas(_cfg(5)) == [0.05] * 5


def test_the_configs_sigmas_count_as_they_do_for_the_evaluator(dataset_name):
    MetadataCatalog.get(dataset_name).set(
        keypoint_names=["a", "b", "c"], keypoint_oks_sigmas=[0.01, 0.02, 0.03]
    )
    cfg = _cfg(3, test=[dataset_name])
    cfg.TEST.KEYPOINT_OKS_SIGMAS = [0.1, 0.2, 0.3]
    assert model_oks_sigmas(cfg) == [0.1, 0.2, 0.3]
    assert model_oks_sigmas(cfg) == dataset_oks_sigmas(dataset_name, cfg.TEST.KEYPOINT_OKS_SIGMAS)
    unregistered = _cfg(3)
    unregistered.TEST.KEYPOINT_OKS_SIGMAS = [0.1, 0.2, 0.3]
    assert model_oks_sigmas(unregistered) == [0.1, 0.2, 0.3]


def test_detectron2s_coco_sets_give_cocos_sigmas_from_their_names():
    expected = [COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES]
    assert model_oks_sigmas(_cfg(17, test=["keypoints_coco_2017_val"])) == pytest.approx(expected)
