"""kpext's config keys: every shipped config loads and builds its head, moved keys name their
new place, and the keys each head is documented to read reach it."""

import glob
import os

import pytest
import torch
from head_helpers import SHAPE, head_cfg, training_instances

from kpext import add_kpext_config
from kpext.config import RENAMED_KEYS
from kpext.engine.inference import load_inference_cfg
from kpext.modeling.codecs import OneHotCodec
from kpext.modeling.heads import GaussianKeypointHead, HourglassKeypointHead, KpextKRCNNHead

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads.keypoint_head import build_keypoint_head
from detectron2.utils.events import EventStorage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
    + glob.glob(os.path.join(REPO, "projects", "*", "configs", "**", "*.yaml"), recursive=True)
)
HEADS = [KpextKRCNNHead, GaussianKeypointHead, HourglassKeypointHead]


def test_the_glob_finds_every_config_folder():
    folders = {os.path.relpath(os.path.dirname(path), REPO) for path in CONFIGS}
    expected = {"configs", os.path.join("configs", "synthetic"), os.path.join("configs", "coco")}
    assert expected <= folders
    assert os.path.join("projects", "FaceLandmarks", "configs") in folders


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_every_config_loads_and_builds_its_keypoint_head(path):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(path)
    pooler = cfg.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION
    shape = ShapeSpec(channels=cfg.MODEL.FPN.OUT_CHANNELS, height=pooler, width=pooler)
    head = build_keypoint_head(cfg, shape)
    assert type(head).__name__ == cfg.MODEL.ROI_KEYPOINT_HEAD.NAME


DEMO_CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_demo.yaml")


@pytest.mark.parametrize(
    "path",
    [p for p in CONFIGS if os.sep + "coco" + os.sep in p] + [DEMO_CONFIG],
    ids=lambda p: os.path.relpath(p, REPO),
)
def test_coco_and_demo_configs_turn_on_the_winning_test_time_options(path):
    """What won on the head benchmark (person-level left/right decoding) is on in the configs
    users train: make demo's and every COCO config; the head built from them decodes that way."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(path)
    assert cfg.TEST.KPEXT.LEFT_RIGHT == "person"
    if cfg.MODEL.ROI_KEYPOINT_HEAD.NAME.startswith("KRCNNConv"):
        return  # Detectron2's stock head reads no TEST.KPEXT key
    cfg.DATASETS.TRAIN = ("kpext_synth_train",)  # the flip map's source (COCO's is not here)
    pooler = cfg.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION
    shape = ShapeSpec(channels=cfg.MODEL.FPN.OUT_CHANNELS, height=pooler, width=pooler)
    head = build_keypoint_head(cfg, shape)
    assert head.decoder.left_right_pairs.shape == (8, 2)  # COCO-17's eight left/right pairs


@pytest.mark.parametrize("old, new", sorted(RENAMED_KEYS.items()))
def test_a_moved_key_on_the_command_line_names_its_new_key(old, new):
    cfg = get_cfg()
    add_kpext_config(cfg)
    with pytest.raises(KeyError, match=f"{old} was renamed to {new}"):
        cfg.merge_from_list([old, "2"])
    with pytest.raises(KeyError, match=f"{old} was renamed to {new}"):
        cfg.clone().merge_from_list([old, "2"])  # Detectron2 clones configs to upgrade old versions


@pytest.mark.parametrize("old, new", sorted(RENAMED_KEYS.items()))
def test_a_moved_key_in_a_yaml_file_names_its_new_key(old, new, tmp_path):
    *parents, leaf = old.split(".")
    lines = [f"{'  ' * depth}{key}:" for depth, key in enumerate(parents)]
    lines.append(f"{'  ' * len(parents)}{leaf}: 2")
    config = tmp_path / "old.yaml"
    config.write_text("\n".join(["VERSION: 2"] + lines) + "\n")
    cfg = get_cfg()
    add_kpext_config(cfg)
    with pytest.raises(KeyError, match=f"{old} was renamed to {new}"):
        cfg.merge_from_file(str(config))
    # Scripts' config loading (demo.py, count_reps.py) passes the message on.
    with pytest.raises(ValueError, match=f"{old} was renamed to {new}"):
        load_inference_cfg(str(config), [], 0.5)


def test_new_keys_exist_and_old_ones_are_gone():
    cfg = get_cfg()
    add_kpext_config(cfg)
    for old, new in RENAMED_KEYS.items():
        node = cfg
        for key in new.split("."):
            node = node[key]
        *parents, leaf = old.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        assert leaf not in node, old
    add_kpext_config(cfg)  # registering the renamed keys twice is harmless


@pytest.mark.parametrize("head_cls", HEADS)
def test_every_head_reads_the_loss_weight_of_detectron2(head_cls):
    x = torch.randn(6, SHAPE.channels, 14, 14)
    instances = [training_instances(4, 1), training_instances(2, 2)]
    losses = []
    for weight in (1.0, 0.25):
        cfg = head_cfg()
        cfg.MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT = weight
        torch.manual_seed(0)
        head = head_cls(cfg, SHAPE).train()
        with EventStorage():
            losses.append(head(x, instances)["loss_keypoint"])
    torch.testing.assert_close(losses[1], 0.25 * losses[0])


@pytest.mark.parametrize("head_cls", HEADS)
def test_every_head_honours_normalize_loss_by_visible_keypoints(head_cls):
    x = torch.randn(6, SHAPE.channels, 14, 14)
    instances = [training_instances(4, 1), training_instances(2, 2)]
    losses = []
    for by_visible in (True, False):
        cfg = head_cfg()
        cfg.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS = by_visible
        torch.manual_seed(0)
        head = head_cls(cfg, SHAPE).train()
        with EventStorage():
            losses.append(head(x, instances)["loss_keypoint"])
    # Every keypoint of these RoIs lies inside its box; one is unlabelled (v = 0).
    with_target = sum(int((i.gt_keypoints.tensor[..., 2] > 0).sum()) for i in instances)
    roi_heads = cfg.MODEL.ROI_HEADS
    per_image = head.num_keypoints * roi_heads.BATCH_SIZE_PER_IMAGE * roi_heads.POSITIVE_FRACTION
    torch.testing.assert_close(losses[1], losses[0] * with_target / (len(instances) * per_image))


@pytest.mark.parametrize("head_cls", HEADS)
def test_one_hot_decoding_reads_the_decode_window_in_every_head(head_cls):
    cfg = head_cfg(CODEC="onehot")
    cfg.MODEL.KPEXT.DECODE_WINDOW = 2.5
    head = head_cls(cfg, SHAPE)
    assert isinstance(head.codec, OneHotCodec) and head.codec.window == 2.5


def test_krcnn_keys_shape_the_krcnn_head():
    cfg = head_cfg()
    cfg.MODEL.KPEXT.KRCNN.UP_SCALE = 1
    cfg.MODEL.KPEXT.KRCNN.DECONV_KERNEL = 2
    head = KpextKRCNNHead(cfg, SHAPE)
    assert head.score_lowres.kernel_size == (2, 2)
    assert head.layers(torch.randn(1, SHAPE.channels, 14, 14)).shape[-2:] == (28, 28)


def test_target_keys_configure_the_codec_heads():
    cfg = head_cfg(SIGMA=2.5, REFINE="quarter", LOSS="focal", SOFT_ARGMAX_BETA=7.0)
    for head_cls in (GaussianKeypointHead, HourglassKeypointHead):
        head = head_cls(cfg, SHAPE)
        codec = head.codec
        assert (codec.sigma, codec.refine, codec.loss_name) == (2.5, "quarter", "focal")
        assert head.soft_argmax_beta == 7.0


@pytest.mark.parametrize("loss, expected", [("", "mse"), ("focal", "focal")])
def test_an_empty_target_loss_is_the_codecs_default(loss, expected):
    assert GaussianKeypointHead(head_cfg(LOSS=loss), SHAPE).codec.loss_name == expected


def test_a_loss_the_codec_lacks_is_an_error_naming_the_key():
    GaussianKeypointHead(head_cfg(CODEC="onehot", LOSS="cross_entropy"), SHAPE)
    message = "MODEL.KPEXT.TARGET.LOSS must be one of .*'onehot' codec, got 'mse'"
    with pytest.raises(ValueError, match=message):
        GaussianKeypointHead(head_cfg(CODEC="onehot", LOSS="mse"), SHAPE)
