"""DATASETS.KPEXT.ON_INVALID on the path from JSON to the trainer's data loader."""

import copy
import json
import logging

import pytest
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES

from kpext import add_kpext_config
from kpext.data import KeypointDataError, register_keypoint_coco
from kpext.engine import KpextTrainer, check_keypoint_count

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog


def write_broken_copy(tiny_synthetic_root, tmp_path):
    """The tiny train JSON with one short keypoint array and one image that is not an image."""
    synthetic = tiny_synthetic_root / "synthetic"
    data = json.loads((synthetic / "annotations" / "person_keypoints_train.json").read_text())
    broken = copy.deepcopy(data)
    bad_annotation = broken["annotations"][0]
    bad_annotation["keypoints"] = bad_annotation["keypoints"][:-1]
    images = tmp_path / "images"
    images.mkdir()
    for image in broken["images"]:
        (images / image["file_name"]).write_bytes(
            (synthetic / "train" / "images" / image["file_name"]).read_bytes()
        )
    unreadable = broken["images"][1]
    (images / unreadable["file_name"]).write_text("this is not a JPEG")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    return path, images, bad_annotation, unreadable


def trainer_cfg(dataset: str, policy: str):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.DATASETS.TRAIN = (dataset,)
    cfg.DATASETS.TEST = ()
    cfg.DATASETS.KPEXT.ON_INVALID = policy
    return cfg


@pytest.fixture(scope="module")
def broken_dataset(tiny_synthetic_root, tmp_path_factory):
    path, images, bad_annotation, unreadable = write_broken_copy(
        tiny_synthetic_root, tmp_path_factory.mktemp("bad")
    )
    name = "kpext_test_broken_train"
    if name not in DatasetCatalog.list():
        register_keypoint_coco(name, str(path), str(images))  # policy left to the config
    return name, path, bad_annotation, unreadable


def test_error_policy_names_file_and_annotation(broken_dataset):
    name, path, bad_annotation, _ = broken_dataset
    with pytest.raises(KeypointDataError) as info:
        KpextTrainer.build_train_loader(trainer_cfg(name, "error"))
    message = str(info.value)
    assert path.name in message and f"annotation id {bad_annotation['id']}" in message
    assert "keypoints has 50 values, expected 51" in message


def test_skip_policy_drops_bad_records_and_unreadable_images(broken_dataset, caplog):
    name, _, bad_annotation, unreadable = broken_dataset
    caplog.set_level(logging.WARNING)
    for logger_name in ("kpext.data", "kpext.engine"):
        logging.getLogger(logger_name).addHandler(caplog.handler)
    try:
        loader = KpextTrainer.build_train_loader(trainer_cfg(name, "skip"))
        seen = set()
        for _, batch in zip(range(12), loader):
            seen.update(d["image_id"] for d in batch)
    finally:
        for logger_name in ("kpext.data", "kpext.engine"):
            logging.getLogger(logger_name).removeHandler(caplog.handler)
    assert unreadable["id"] not in seen and len(seen) >= 3
    text = caplog.text
    assert "skipped 1 invalid record" in text
    assert f"image id {unreadable['id']}" in text and "cannot read the image" in text


def test_unreadable_image_with_error_policy_names_the_file(broken_dataset):
    from kpext.engine.data import CheckedDatasetMapper

    name, _, bad_annotation, unreadable = broken_dataset
    cfg = trainer_cfg(name, "error")
    mapper = CheckedDatasetMapper(cfg, is_train=True, on_invalid="error")
    cfg.DATASETS.KPEXT.ON_INVALID = "skip"  # only to load the records past the bad annotation
    from kpext.data import invalid_record_policy

    with invalid_record_policy("skip"):
        records = DatasetCatalog.get(name)
    record = next(r for r in records if r["image_id"] == unreadable["id"])
    with pytest.raises(
        KeypointDataError,
        match=rf"{unreadable['file_name']} \(image id {unreadable['id']}\): cannot read",
    ):
        mapper(record)


def test_training_datasets_with_different_keypoints_are_refused(tiny_synthetic_root):
    cfg = trainer_cfg("kpext_synth_train", "error")
    renamed = "kpext_test_renamed_keypoints"
    if renamed not in DatasetCatalog.list():
        DatasetCatalog.register(renamed, lambda: [])
        names = list(MetadataCatalog.get("kpext_synth_train").keypoint_names)
        names[1], names[2] = names[2], names[1]
        MetadataCatalog.get(renamed).set(keypoint_names=names)
    cfg.DATASETS.TRAIN = ("kpext_synth_train", renamed)
    with pytest.raises(ValueError, match="name their keypoints differently .*left_eye/right_eye"):
        check_keypoint_count(cfg)
