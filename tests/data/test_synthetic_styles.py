"""Tests of the synthetic people's styles, the held-out-style split and the scale range."""

import contextlib
import dataclasses
import io
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from script_loading import load_script
from synthetic_helpers import generate_and_read

import kpext  # noqa: F401  (registers the built-in datasets)
from kpext.data.builtin import synthetic_annotation_path, synthetic_image_dir
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES
from kpext_synth.body import PersonSpec
from kpext_synth.people import (
    DEFAULT_SPLITS,
    HELDOUT_STYLES,
    STYLES,
    TRAIN_STYLE_MIX,
    TRAIN_STYLES,
    SyntheticConfig,
    split_is_current,
)
from kpext_synth.preview import style_example
from kpext_synth.render import image_rng
from kpext_synth.scene import render_image, render_people
from kpext_synth.styles import HEAD_SHAPES, PersonStyle, sample_person_style

from detectron2.data import MetadataCatalog

KP = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}
ALL_STYLES = dataclasses.replace(
    DEFAULT_SPLITS["train"], num_images=10, seed=4, width=128, height=128, styles=STYLES
)


def _image_bytes(root, data, split="train"):
    folder = synthetic_image_dir(str(root), split)
    out = {}
    for im in data["images"]:
        with open(os.path.join(folder, im["file_name"]), "rb") as f:
            out[im["id"]] = f.read()
    return out


@pytest.fixture(scope="module")
def styled_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("styled")
    return (root,) + generate_and_read(root, ALL_STYLES)


def test_default_splits_keep_held_out_styles_out_of_training():
    assert set(DEFAULT_SPLITS) == {"train", "val", "val_heldout"}
    assert set(TRAIN_STYLES) | set(HELDOUT_STYLES) == set(STYLES)
    assert not set(TRAIN_STYLES) & set(HELDOUT_STYLES) and "classic" in TRAIN_STYLES
    assert DEFAULT_SPLITS["train"].num_images == 1200 and DEFAULT_SPLITS["train"].seed == 0
    assert DEFAULT_SPLITS["val"].num_images == 100 and DEFAULT_SPLITS["val"].seed == 1
    assert DEFAULT_SPLITS["val_heldout"].num_images == 100
    seeds = {cfg.seed for cfg in DEFAULT_SPLITS.values()}
    assert len(seeds) == 3
    for split in ("train", "val"):
        assert set(DEFAULT_SPLITS[split].styles) == set(TRAIN_STYLES)
    assert set(DEFAULT_SPLITS["val_heldout"].styles) == set(HELDOUT_STYLES)
    for cfg in DEFAULT_SPLITS.values():
        cfg.validate()


def test_a_style_named_twice_is_drawn_twice_as_often():
    cfg = dataclasses.replace(ALL_STYLES, styles=("outline", "classic", "outline"))
    rng = np.random.default_rng(0)
    names = [sample_person_style(rng, cfg, 100.0).name for _ in range(4000)]
    # 2/3 expected; the binomial standard deviation over 4000 draws is 0.0075.
    assert abs(names.count("outline") / len(names) - 2 / 3) < 0.03
    assert set(names) == {"outline", "classic"}


def test_the_training_split_draws_half_its_people_in_classic():
    assert sorted(TRAIN_STYLE_MIX) == ["classic", "classic", "lowcontrast", "silhouette"]
    assert DEFAULT_SPLITS["train"].styles == TRAIN_STYLE_MIX
    assert DEFAULT_SPLITS["val"].styles == TRAIN_STYLES  # val weighs every training style alike


@pytest.mark.parametrize("split", ["train", "val_heldout"])
def test_generated_default_splits_use_only_their_styles(tmp_path, split):
    cfg = dataclasses.replace(DEFAULT_SPLITS[split], num_images=8, width=128, height=128)
    _, _, data = generate_and_read(tmp_path, cfg, split)
    styles = {ann["style"] for ann in data["annotations"]}
    assert styles and styles <= set(DEFAULT_SPLITS[split].styles)
    if split == "train":
        assert not styles & set(HELDOUT_STYLES)


# --- determinism ------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path, styled_split):
    root, _, raw, data = styled_split
    _, raw_again, data_again = generate_and_read(tmp_path, ALL_STYLES)
    assert raw_again == raw
    assert _image_bytes(root, data) == _image_bytes(tmp_path, data_again)


def test_different_seed_gives_different_files(tmp_path, styled_split):
    root, _, _, data = styled_split
    _, _, other = generate_and_read(
        tmp_path, dataclasses.replace(ALL_STYLES, seed=ALL_STYLES.seed + 1)
    )
    assert other["annotations"] != data["annotations"]
    first, second = _image_bytes(root, data), _image_bytes(tmp_path, other)
    assert all(first[i] != second[i] for i in first)


def test_classic_without_variety_draws_no_style_random_numbers():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert sample_person_style(rng, SyntheticConfig(num_images=1), 100.0) == PersonStyle()
    assert rng.bit_generator.state == state  # so such configs draw the images they always did


# --- COCO validity ------------------------------------------------------------


def test_pycocotools_loads_the_split(styled_split):
    _, path, _, data = styled_split
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(path)
    assert len(coco.getImgIds()) == ALL_STYLES.num_images
    assert len(coco.getAnnIds()) == len(data["annotations"]) >= ALL_STYLES.num_images


def test_every_annotation_is_valid(styled_split):
    _, _, _, data = styled_split
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    for ann in data["annotations"]:
        width, height = sizes[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height
        assert ann["area"] > 0 and ann["style"] in STYLES
        assert len(ann["keypoints"]) == 51
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum()) > 0
        outside = kps[:, 2] == 0
        assert np.all(kps[outside, :2] == 0)
        inside = kps[~outside]
        assert np.all((inside[:, 0] >= 0) & (inside[:, 0] <= width - 1))
        assert np.all((inside[:, 1] >= 0) & (inside[:, 1] <= height - 1))


def test_every_style_is_present(styled_split):
    _, _, _, data = styled_split
    assert {ann["style"] for ann in data["annotations"]} == set(STYLES)


def test_split_is_current_notices_a_change_of_styles(styled_split):
    root = str(styled_split[0])
    assert split_is_current(root, "train", ALL_STYLES)
    assert not split_is_current(root, "train", dataclasses.replace(ALL_STYLES, styles=("classic",)))
    assert not split_is_current(root, "train", dataclasses.replace(ALL_STYLES, degrade_prob=0.0))


# --- labels in every style -------------------------------------------------------


def _frontal(center, style, height=100.0):
    return PersonSpec(center=center, height=height, yaw=0.0, style=style)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("head_shape", HEAD_SHAPES)
def test_person_in_front_hides_the_one_behind_in_every_style(style, head_shape):
    look = PersonStyle(name=style, head_shape=head_shape, line_width=2.0, pattern="checks")
    canvas = np.full((160, 160, 3), 128, np.uint8)
    behind, front = render_people(canvas, [_frontal((80.0, 80.0), look)] * 2)
    assert np.all(behind["keypoints"][:, 2] == 1)
    assert np.all(front["keypoints"][:, 2] == 2)  # the face points stay on every head shape
    assert behind["style"] == front["style"] == style
    assert front["visible_area"] == front["area"] and behind["visible_area"] == 0


@pytest.mark.parametrize("style", STYLES)
def test_keypoints_outside_the_image_are_unlabelled_in_every_style(style):
    canvas = np.zeros((128, 128, 3), np.uint8)
    (ann,) = render_people(canvas, [_frontal((64.0, 150.0), PersonStyle(name=style), 150.0)])
    kps = ann["keypoints"]
    for name in ("left_ankle", "right_ankle", "left_knee", "right_knee"):
        assert tuple(kps[KP[name]]) == (0.0, 0.0, 0.0)
    assert kps[KP["nose"], 2] == 2 and ann["num_keypoints"] == int((kps[:, 2] > 0).sum()) < 17


@pytest.mark.parametrize("style", ["outline", "silhouette", "lowcontrast", "textured"])
def test_styles_change_the_picture_not_the_labels(style):
    canvas = np.full((160, 160, 3), 90, np.uint8)
    classic_canvas = canvas.copy()
    (styled,) = render_people(canvas, [_frontal((80.0, 80.0), PersonStyle(name=style))])
    (classic,) = render_people(classic_canvas, [_frontal((80.0, 80.0), PersonStyle())])
    np.testing.assert_array_equal(styled["keypoints"], classic["keypoints"])
    assert styled["bbox"] == classic["bbox"] and styled["area"] == classic["area"]
    assert not np.array_equal(canvas, classic_canvas)


def test_style_example_shows_its_style():
    image, anns = style_example("outline", dataclasses.replace(ALL_STYLES, styles=STYLES))
    assert image.shape == (128, 128, 3) and anns
    assert {a["style"] for a in anns} == {"outline"}


# --- scale -------------------------------------------------------------------------


def test_training_config_has_people_that_fill_the_image():
    cfg = DEFAULT_SPLITS["train"]
    tallest = []
    for index in range(60):
        _, anns = render_image(cfg, image_rng(cfg.seed, "train", index))
        tallest.append(max(a["bbox"][3] for a in anns) / cfg.height)
    tallest = np.asarray(tallest)
    assert 0.06 <= np.mean(tallest > 0.6) <= 0.3  # about 1 image in 7 over the whole split
    assert tallest.max() > 0.85
    assert np.min(tallest) < 0.4  # and small people still


# --- CLI and registration -------------------------------------------------------------


def _load_cli():
    return load_script("make_synthetic", "datasets", "make_synthetic.py")


def test_cli_picks_styles(tmp_path, capsys):
    cli = _load_cli()
    args = ["--out", str(tmp_path), "--split", "mine", "--num-images", "4", "--width", "96",
            "--height", "96", "--styles", "classic,silhouette", "--quiet"]  # fmt: skip
    assert cli.main(args) == 0
    with open(synthetic_annotation_path(str(tmp_path), "mine")) as f:
        data = json.load(f)
    assert data["info"]["config"]["styles"] == ["classic", "silhouette"]
    assert {a["style"] for a in data["annotations"]} <= {"classic", "silhouette"}
    assert cli.main(args) == 0
    assert "up to date" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--out", str(tmp_path), "--styles", "classic,cubist"])
    assert exit_info.value.code == 2
    assert "--styles" in capsys.readouterr().err


def test_held_out_split_is_registered_like_val():
    val = MetadataCatalog.get("kpext_synth_val").as_dict()
    held_out = MetadataCatalog.get("kpext_synth_val_heldout").as_dict()
    assert held_out["json_file"].endswith(
        os.path.join("synthetic", "annotations", "person_keypoints_val_heldout.json")
    )
    for key in ("name", "json_file", "image_root"):
        val.pop(key), held_out.pop(key)
    assert held_out == val and held_out["evaluator_type"] == "coco"
