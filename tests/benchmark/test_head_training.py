"""The head benchmark's pieces on a tiny synthetic set: shared detector cache, mirrored
training images, head training on frozen features, evaluation on gt boxes and detections."""

import os

import numpy as np
import pytest
import torch
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES, make_tiny_synthetic
from kpext_bench.head_training import HeadPrecision, batch_order, evaluate_head, train_head
from kpext_bench.keypoint_ap import keypoint_ap
from kpext_bench.shared_detector import (
    cache_images,
    cached_images_on_disk,
    detector_cfg,
    load_frozen_model,
    train_shared_detector,
)

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_data")
    make_tiny_synthetic(root)
    return root


def tiny_cfg(root, head="KpextKRCNNHead"):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = head
    for split in ("train", "val"):
        name = f"kpext_test_bench_{split}"
        if name not in DatasetCatalog.list():
            register_keypoint_coco(
                name,
                str(root / "synthetic" / "annotations" / f"person_keypoints_{split}.json"),
                str(root / "synthetic" / split / "images"),
            )
    cfg.DATASETS.TRAIN = ("kpext_test_bench_train",)
    cfg.DATASETS.TEST = ("kpext_test_bench_val",)
    cfg.SOLVER.BASE_LR = 0.02
    cfg.SOLVER.WARMUP_ITERS = 5
    cfg.freeze()
    return cfg


def test_batch_order_is_seeded_and_covers_each_epoch():
    a = batch_order(10, 4, 5, seed=3)
    assert a.shape == (5, 4)
    assert np.array_equal(a, batch_order(10, 4, 5, seed=3))
    assert not np.array_equal(a, batch_order(10, 4, 5, seed=4))
    assert sorted(a.ravel()[:10]) == list(range(10))  # the first epoch holds every item once


def test_shared_detector_is_trained_once_and_cached(tiny_root, tmp_path):
    cfg = tiny_cfg(tiny_root)
    weights = train_shared_detector(cfg, 2, str(tmp_path))
    assert os.path.exists(weights)
    stamp = os.path.getmtime(weights)
    assert train_shared_detector(cfg, 2, str(tmp_path)) == weights  # cached: no second training
    assert os.path.getmtime(weights) == stamp
    model = load_frozen_model(detector_cfg(cfg, 2, ""), weights)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert not hasattr(model.roi_heads, "keypoint_head")  # the detector never had a keypoint head


def test_mirrored_training_images_swap_left_and_right(tiny_root, tmp_path):
    cfg = tiny_cfg(tiny_root)
    torch.manual_seed(0)
    model = load_frozen_model(detector_cfg(cfg, 1, ""), _untrained_checkpoint(cfg, tmp_path))
    cached = cache_images(
        model, cfg, cfg.DATASETS.TRAIN[0], train=True, flips=True, limit=2, progress=False
    )
    assert len(cached) == 4  # plain, mirrored, plain, mirrored
    plain, mirrored = cached[0], cached[1]
    width = plain.targets.image_size[1]
    left = COCO_PERSON_KEYPOINT_NAMES.index("left_wrist")
    right = COCO_PERSON_KEYPOINT_NAMES.index("right_wrist")
    kp, kp_m = plain.targets.gt_keypoints.tensor, mirrored.targets.gt_keypoints.tensor
    visible = kp[:, left, 2] > 0
    assert bool(visible.any())
    # Continuous coordinates: x -> width - x, and the left wrist becomes the right one.
    assert torch.allclose(kp_m[visible, right, 0], width - kp[visible, left, 0])
    assert torch.allclose(kp_m[visible, right, 1], kp[visible, left, 1])
    assert torch.allclose(
        mirrored.features["p2"].float(),
        model.backbone(_image_tensor(model, cfg, mirror=True))["p2"].to(torch.float16).float(),
    )


def _untrained_checkpoint(cfg, folder) -> str:
    """A checkpoint of an untrained box-only detector in ``folder`` (the test's ``tmp_path``,
    which pytest cleans up; the cache tests need no trained one)."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    folder = str(folder)
    DetectionCheckpointer(build_model(detector_cfg(cfg, 1, "")), save_dir=folder).save("untrained")
    return os.path.join(folder, "untrained.pth")


@torch.no_grad()
def _image_tensor(model, cfg, mirror):
    from detectron2.data.detection_utils import read_image

    record = DatasetCatalog.get(cfg.DATASETS.TRAIN[0])[0]
    image = read_image(record["file_name"], format=cfg.INPUT.FORMAT)
    if mirror:
        image = image[:, ::-1]
    tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)).astype("float32"))
    return model.preprocess_image([{"image": tensor}]).tensor


def test_head_training_on_the_frozen_detector_lowers_the_loss_and_evaluates(tiny_root, tmp_path):
    cfg = tiny_cfg(tiny_root)
    torch.manual_seed(0)
    weights = _untrained_checkpoint(cfg, tmp_path)
    box_model = load_frozen_model(detector_cfg(cfg, 1, ""), weights)
    cache_file = str(tmp_path / "train.pt")
    train_cache = cached_images_on_disk(
        cache_file,
        box_model,
        cfg,
        cfg.DATASETS.TRAIN[0],
        train=True,
        flips=True,
        limit=3,
        progress=False,
    )
    assert os.path.exists(cache_file)
    assert len(cached_images_on_disk(cache_file, None, cfg, "unused")) == len(
        train_cache
    )  # read back, no model needed
    val_cache = cache_images(box_model, cfg, cfg.DATASETS.TEST[0], train=False, progress=False)

    torch.manual_seed(0)
    model = load_frozen_model(cfg, weights)
    frozen_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    log = train_head(model, cfg, train_cache, iterations=30, seed=0)
    assert len(log.seconds) == len(log.losses) == 30
    # Uniform logits over 56 x 56 cells cost log(3136) = 8.05: the head must learn from there.
    assert np.mean(log.losses[-5:]) < np.mean(log.losses[:5]) - 1.0, log.losses
    for k, v in model.backbone.state_dict().items():  # only the head trained
        assert torch.equal(v, frozen_before[k]), k

    from pycocotools.coco import COCO

    from kpext.data import dataset_oks_sigmas

    from detectron2.data import MetadataCatalog

    name = cfg.DATASETS.TEST[0]
    coco = COCO(MetadataCatalog.get(name).json_file)
    result = evaluate_head(model, val_cache, name, coco, dataset_oks_sigmas(name))
    assert len(result.matches_gt) == len(result.matches_det) == len(coco.getImgIds())
    # On ground-truth boxes every non-ignored person gets exactly one detection.
    num_gt = sum(m.num_gt for m in result.matches_gt)
    assert num_gt > 0 and sum(len(m.scores) for m in result.matches_gt) >= num_gt
    assert np.isfinite(keypoint_ap(result.matches_gt))


def test_detector_cache_key_ignores_keypoint_options_only(tiny_root):
    from kpext_bench.shared_detector import cache_key

    cfg = detector_cfg(tiny_cfg(tiny_root), 5, "")
    key = cache_key(cfg, {"seed": 0})
    other_head = cfg.clone()
    other_head.defrost()
    other_head.MODEL.KPEXT.TARGET.SIGMA = 3.0
    other_head.MODEL.ROI_KEYPOINT_HEAD.NAME = "GaussianKeypointHead"
    other_head.OUTPUT_DIR = "elsewhere"
    assert cache_key(other_head, {"seed": 0}) == key
    other_detector = cfg.clone()
    other_detector.defrost()
    other_detector.MODEL.FPN.OUT_CHANNELS = 64
    assert cache_key(other_detector, {"seed": 0}) != key
    assert cache_key(cfg, {"seed": 1}) != key


def test_detector_cache_key_follows_the_data_not_its_path_or_time(tiny_root, tmp_path):
    """A fresh clone regenerates the same data at another path, later: it must find the same
    detector; other data must not."""
    import json
    import shutil

    from kpext_bench.shared_detector import cache_key

    from detectron2.data import DatasetCatalog, MetadataCatalog

    source = tiny_root / "synthetic" / "annotations" / "person_keypoints_train.json"
    name = "kpext_test_bench_key"

    def key_with_data_at(path):
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_keypoint_coco(name, str(path), str(tiny_root / "synthetic" / "train" / "images"))
        cfg = detector_cfg(tiny_cfg(tiny_root), 5, "").clone()
        cfg.defrost()
        cfg.DATASETS.TRAIN = (name,)
        return cache_key(cfg, {"seed": 0})

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = shutil.copy(source, tmp_path / "a" / "train.json")
    key = key_with_data_at(first)
    os.utime(first, (1e9, 1e9))
    assert key_with_data_at(first) == key
    second = shutil.copy(source, tmp_path / "b" / "train.json")
    assert key_with_data_at(second) == key
    data = json.loads(open(second).read())
    data["annotations"][0]["keypoints"][0] += 1
    with open(second, "w") as f:
        json.dump(data, f)
    assert key_with_data_at(second) != key


def test_a_keypoint_detector_with_detectron2s_head_ignores_kpext_keys_only(tiny_root):
    """The bench's detector (keypoint objective, Detectron2's head, DefaultTrainer) reads no
    MODEL.KPEXT key: adding or changing one must not retrain it; with a kpext head it may."""
    from kpext_bench.shared_detector import cache_key

    cfg = detector_cfg(tiny_cfg(tiny_root, "KRCNNConvDeconvUpsampleHead"), 5, "", "keypoints")
    key = cache_key(cfg, {"seed": 0})
    new_key = cfg.clone()
    new_key.defrost()
    new_key.MODEL.KPEXT.KRCNN.SOMETHING_NEW = True
    new_key.MODEL.KPEXT.TARGET.SIGMA = 3.0
    assert cache_key(new_key, {"seed": 0}) == key
    for node, name, value in [
        ("ROI_KEYPOINT_HEAD", "CONV_DIMS", (8, 8)),  # the stock head reads it
        ("ROI_KEYPOINT_HEAD", "NAME", "KpextKRCNNHead"),
    ]:
        changed = cfg.clone()
        changed.defrost()
        setattr(changed.MODEL[node], name, value)
        assert cache_key(changed, {"seed": 0}) != key, name
    kpext_head = detector_cfg(tiny_cfg(tiny_root), 5, "", "keypoints")
    other_sigma = kpext_head.clone()
    other_sigma.defrost()
    other_sigma.MODEL.KPEXT.TARGET.SIGMA = 3.0
    assert cache_key(other_sigma, {"seed": 0}) != cache_key(kpext_head, {"seed": 0})


def test_image_flip_on_exactly_mirrored_features_equals_the_roi_feature_flip(tiny_root):
    """When the mirrored image's features are exactly the mirrored features (an ideal,
    mirror-equivariant backbone), the image-level flip test and the RoI-feature flip test
    (TEST.KPEXT.FLIP) must agree: two independent paths to the same heatmaps."""
    from kpext_bench.head_training import image_flip_keypoints

    from detectron2.data.detection_utils import create_keypoint_hflip_indices
    from detectron2.modeling import build_model

    cfg = tiny_cfg(tiny_root).clone()
    cfg.defrost()
    cfg.TEST.KPEXT.FLIP = True
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    width = 128
    features = {f"p{i}": torch.randn(1, 32, 128 // 2**i, width // 2**i) for i in range(2, 7)}
    mirrored = {k: v.flip(-1) for k, v in features.items()}
    boxes = torch.tensor([[10.0, 20.0, 60.0, 110.0], [70.0, 5.0, 120.0, 90.0]])
    flip_indices = [int(i) for i in create_keypoint_hflip_indices(cfg.DATASETS.TRAIN)]
    with torch.no_grad():
        image_flip = image_flip_keypoints(
            model.roi_heads, features, mirrored, boxes, width, flip_indices
        )
        head = model.roi_heads.keypoint_head
        pooled = model.roi_heads.keypoint_pooler(
            [features[f] for f in model.roi_heads.keypoint_in_features], [Boxes(boxes)]
        )
        roi_flip = head.decode(head.predict_heatmaps(pooled), boxes)
    assert torch.allclose(image_flip, roi_flip, atol=1e-4)


def test_keypoint_objective_detector_is_shared_without_its_keypoint_head(tiny_root, tmp_path):
    """The keypoint objective trains the whole Keypoint R-CNN, then drops its keypoint head:
    a compared head with the stock head's parameter names must start from its own
    initialisation, not from the trained head."""
    cfg = tiny_cfg(tiny_root, "KRCNNConvDeconvUpsampleHead")
    shared = train_shared_detector(cfg, 3, str(tmp_path), objective="keypoints")
    trained = torch.load(os.path.join(os.path.dirname(shared), "model_final.pth"))["model"]
    kept = torch.load(shared)["model"]
    head_keys = [k for k in trained if k.startswith("roi_heads.keypoint_head.")]
    assert head_keys and not any(k.startswith("roi_heads.keypoint_head.") for k in kept)
    assert sorted(kept) == sorted(k for k in trained if k not in head_keys)
    for k, v in kept.items():
        assert torch.equal(v, trained[k]), k
    # A head loaded on it keeps the seeded fresh initialisation of its own build.
    torch.manual_seed(7)
    model = load_frozen_model(cfg, shared)
    from detectron2.modeling import build_model

    torch.manual_seed(7)
    fresh = build_model(cfg)
    for k, v in model.roi_heads.keypoint_head.state_dict().items():
        assert torch.equal(v, fresh.roi_heads.keypoint_head.state_dict()[k]), k
        assert not torch.equal(v, trained[f"roi_heads.keypoint_head.{k}"]), k
    # Another objective is another detector: its own cache entry.
    boxes = train_shared_detector(cfg, 3, str(tmp_path), objective="boxes")
    assert os.path.dirname(boxes) != os.path.dirname(shared)
    with pytest.raises(ValueError, match="objective"):
        detector_cfg(cfg, 3, "", objective="masks")


def test_error_shares_partition_the_labelled_keypoints(tiny_root, tmp_path):
    """evaluate_head's error classes: five shares that add up to one, left/right inversions a
    part of all inversions; on gt boxes every labelled person is matched."""
    from pycocotools.coco import COCO

    from kpext.data import dataset_oks_sigmas

    from detectron2.data import MetadataCatalog
    from detectron2.data.detection_utils import create_keypoint_hflip_indices

    cfg = tiny_cfg(tiny_root)
    torch.manual_seed(0)
    weights = _untrained_checkpoint(cfg, tmp_path)
    box_model = load_frozen_model(detector_cfg(cfg, 1, ""), weights)
    val_cache = cache_images(box_model, cfg, cfg.DATASETS.TEST[0], train=False, progress=False)
    model = load_frozen_model(cfg, weights)
    name = cfg.DATASETS.TEST[0]
    coco = COCO(MetadataCatalog.get(name).json_file)
    counterparts = [int(i) for i in create_keypoint_hflip_indices(cfg.DATASETS.TRAIN)]
    result = evaluate_head(
        model, val_cache, name, coco, dataset_oks_sigmas(name), counterparts=counterparts
    )
    shares = result.errors_gt
    classes = [shares[c] for c in ("good", "jitter", "inversion", "swap", "miss")]
    assert sum(classes) == pytest.approx(1.0)
    assert 0 <= shares["inversion_left_right"] <= shares["inversion"]
    # An untrained head on gt boxes: most keypoints far from their labels.
    assert shares["good"] < 0.5
    # The untrained detector's detections: shares that add up to one where it matched
    # somebody, none made up (NaN) where it matched nobody.
    det = [result.errors_det[c] for c in ("good", "jitter", "inversion", "swap", "miss")]
    assert all(np.isnan(det)) or sum(det) == pytest.approx(1.0), result.errors_det


def test_bf16_channels_last_head_training_follows_float32_and_hands_back_a_float32_head(
    tiny_root, tmp_path
):
    """The plateau regime's head precision: the same first loss as float32 up to bf16's
    rounding, a loss that falls, and a head returned in float32 and contiguous memory (so
    evaluation and the timings run the same network as any other row)."""
    cfg = tiny_cfg(tiny_root)
    torch.manual_seed(0)
    weights = _untrained_checkpoint(cfg, tmp_path)
    box_model = load_frozen_model(detector_cfg(cfg, 1, ""), weights)
    train_cache = cache_images(
        box_model, cfg, cfg.DATASETS.TRAIN[0], train=True, flips=False, limit=3, progress=False
    )
    losses = {}
    for name, precision in {
        "float32": HeadPrecision(),
        "bf16 autocast + channels-last": HeadPrecision(bf16=True, channels_last=True),
    }.items():
        assert precision.label == name
        torch.manual_seed(0)
        model = load_frozen_model(cfg, weights)
        losses[name] = train_head(model, cfg, train_cache, 20, seed=0, precision=precision).losses
        head = model.roi_heads.keypoint_head
        assert not head.training
        for p in head.parameters():
            assert p.dtype == torch.float32 and p.is_contiguous() and not p.requires_grad
    first32, first16 = losses["float32"][0], losses["bf16 autocast + channels-last"][0]
    assert first16 != first32  # bf16 did run
    assert abs(first16 - first32) < 0.02 * first32, (first16, first32)
    late, early = (
        np.mean(losses["bf16 autocast + channels-last"][-5:]),
        np.mean(losses["bf16 autocast + channels-last"][:5]),
    )
    assert late < early - 1.0, losses["bf16 autocast + channels-last"]
