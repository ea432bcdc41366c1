"""Exported models (ONNX on onnxruntime, TorchScript) give the eager model's predictions,
whatever the number of detections: a tiny trained detector, images of three sizes with
0, 1 and many people detected, each kpext head and Detectron2's stock head, every combination
of the test-time options that change the graph, and ``make demo``'s own model and config."""

import itertools
import warnings

import pytest
import torch
from export_helpers import (
    DEMO_CONFIG,
    assert_same_predictions,
    counts,
    demo_cfg,
    eager_predict,
    model_from_state,
    model_with_detector,
    parity_images,
)

from kpext import add_kpext_config
from kpext.config import DRAWING_TEST_OPTIONS, GRAPH_TEST_OPTIONS
from kpext.export import OnnxPredictor, TorchScriptPredictor, export_model, preprocess

from detectron2.config import get_cfg

STOCK_HEAD = "KRCNNConvDeconvUpsampleHead"
KPEXT_HEADS = (
    "KpextKRCNNHead",
    "KRCNNCodecKeypointHead",
    "GaussianKeypointHead",
    "HourglassKeypointHead",
)


def graph_option_combinations():
    """Every combination of the values of the TEST.KPEXT options that change the graph
    (kpext.config.GRAPH_TEST_OPTIONS), as config overrides; the defaults first."""
    keys = list(GRAPH_TEST_OPTIONS)
    for values in itertools.product(*(GRAPH_TEST_OPTIONS[k] for k in keys)):
        yield tuple(x for k, v in zip(keys, values) for x in (f"TEST.KPEXT.{k}", str(v)))


COMBINATIONS = list(graph_option_combinations())
ALL_ON = COMBINATIONS[-1]
# The facing branch's probabilities enter person-level left/right decoding.
FACING = ("MODEL.KPEXT.FACING.LOSS_WEIGHT", "1.0", "TEST.KPEXT.LEFT_RIGHT", "person")
CASES = (
    # every head as configured by default, Detectron2's stock head included
    [(head, "onnx", ()) for head in KPEXT_HEADS + (STOCK_HEAD,)]
    # every combination of the graph-changing options, on both runtimes
    + [
        ("KpextKRCNNHead", fmt, opts)
        for opts in COMBINATIONS[1:]
        for fmt in ("onnx", "torchscript")
    ]
    + [("KpextKRCNNHead", "torchscript", ())]
    # every option on, on every other kpext head
    + [(head, "onnx", ALL_ON) for head in KPEXT_HEADS[1:]]
    + [("KpextKRCNNHead", fmt, FACING) for fmt in ("onnx", "torchscript")]
)


def test_every_test_time_option_is_in_the_export_matrix():
    """A new TEST.KPEXT key must be declared as graph-changing (then the cases above export
    each of its values) or as drawing-only; the defaults are each option's first value."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    declared = set(GRAPH_TEST_OPTIONS) | set(DRAWING_TEST_OPTIONS)
    assert set(cfg.TEST.KPEXT.keys()) == declared, (
        "declare each TEST.KPEXT key in kpext.config.GRAPH_TEST_OPTIONS (it changes the model's "
        "output) or DRAWING_TEST_OPTIONS: "
        f"undeclared {sorted(set(cfg.TEST.KPEXT.keys()) - declared)}"
    )
    for key, values in GRAPH_TEST_OPTIONS.items():
        assert cfg.TEST.KPEXT.get(key) == values[0], key
    exported = {opts[i] for _, _, opts in CASES for i in range(0, len(opts), 2)}
    assert {f"TEST.KPEXT.{k}" for k in GRAPH_TEST_OPTIONS} <= exported


def _export_and_load(model, cfg, images, fmt, tmp_path):
    path = str(tmp_path / ("model.onnx" if fmt == "onnx" else "model.ts"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the tracer's are filtered inside
        export_model(model, cfg, images[0], path, fmt)
        predictor_class = OnnxPredictor if fmt == "onnx" else TorchScriptPredictor
        return predictor_class(path, cfg)


def case_id(head, fmt, opts):
    return f"{head}-{fmt}" + ("-" + "-".join(opts[1::2]) if opts else "")


@pytest.mark.parametrize("head,fmt,opts", CASES, ids=[case_id(*c) for c in CASES])
def test_exported_model_matches_eager(trained_detector, head, fmt, opts, tmp_path):
    state, root, thresh = trained_detector
    model, cfg = model_with_detector(head, state, thresh, opts)
    for key, value in zip(opts[::2], opts[1::2]):  # the options reached the config exported
        assert str(config_value(cfg, key)) == value, key
    predictor, images, eager = check_parity(
        model, cfg, root, thresh, fmt, tmp_path, head=head, opts=opts, state=state
    )
    if (head, fmt, opts) == CASES[0]:
        check_documented_layout(predictor, cfg, images, eager, thresh)


def config_value(cfg, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_demo_model_exports(trained_demo_detector, fmt, tmp_path):
    """The model ``make demo``'s config builds, with its test-time options exactly, exports and
    matches eager: the README's export commands run on it."""
    state, root, thresh = trained_demo_detector
    model, cfg = model_from_state(demo_cfg(score_thresh=thresh), state)
    reference = get_cfg()
    add_kpext_config(reference)
    reference.merge_from_file(DEMO_CONFIG)
    assert cfg.TEST.KPEXT == reference.TEST.KPEXT
    assert cfg.TEST.KPEXT.LEFT_RIGHT == "person"  # what makes demo's decoding differ
    predictor, _, _ = check_parity(model, cfg, root, thresh, fmt, tmp_path)
    for key in GRAPH_TEST_OPTIONS:
        assert predictor.metadata[f"test.{key.lower()}"] == str(cfg.TEST.KPEXT.get(key))


def check_parity(model, cfg, root, thresh, fmt, tmp_path, head="", opts=(), state=None):
    """Export ``model`` traced on the first parity image; the exported file's predictions on
    every parity image (0, 1 and several detections, three sizes) equal eager's, also at a
    higher score threshold. Returns the predictor, the images and eager's predictions (the
    stock head's: KpextKRCNNHead's on its weights)."""
    images = parity_images(root)
    eager = [eager_predict(model, cfg, image) for image in images]
    predictor = _export_and_load(model, cfg, images, fmt, tmp_path)
    sizes = {image.shape[:2] for image in images}
    assert len(sizes) >= 3
    # The trace's example (images[0]) has another detection count than some images, and
    # the flat grey image has none: a frozen count would fail here.
    assert len(set(counts(eager))) >= 3 and 0 in counts(eager), counts(eager)
    if head == STOCK_HEAD:
        # Exported, the stock head's logits are decoded by kpext's vectorised one-hot decoding;
        # Detectron2's loop can pick another, almost equal mode of a barely trained heatmap
        # (see OneHotCodec). Its detections must match Detectron2's exactly; its keypoints are
        # those of KpextKRCNNHead with the same weights (the same network, kpext's decoding).
        for i, (image, expected) in enumerate(zip(images, eager)):
            got = predictor(image)["instances"]
            got.pred_keypoints = expected.pred_keypoints
            assert_same_predictions(got, expected, f"stock head {fmt} image {i} {image.shape}")
        model, _ = model_with_detector("KpextKRCNNHead", state, thresh, opts)
        eager = [eager_predict(model, cfg, image) for image in images]
    context = case_id(head or "demo", fmt, opts)
    for i, (image, expected) in enumerate(zip(images, eager)):
        got = predictor(image)["instances"]
        assert got.image_size == expected.image_size
        assert_same_predictions(got, expected, f"{context} image {i} {image.shape}")

    # A higher threshold than the export's keeps exactly the eager model's detections at it:
    # between the two best scores of the image with most detections, one person there.
    busiest = max(range(len(images)), key=lambda i: len(eager[i]))
    scores = eager[busiest].scores
    assert len(scores) >= 2, counts(eager)
    threshold = float((scores[0] + scores[1]) / 2)
    cfg_one = cfg.clone()
    cfg_one.MODEL.ROI_HEADS.SCORE_THRESH_TEST = threshold
    predictor_one = type(predictor)(predictor.path, cfg_one)
    model.roi_heads.box_predictor.test_score_thresh = threshold
    try:
        for i, image in enumerate(images):
            expected = eager_predict(model, cfg_one, image)
            assert len(expected) == 1 or i != busiest
            got = predictor_one(image)["instances"]
            assert_same_predictions(got, expected, f"{context} at score > {threshold:.3f}")
    finally:
        model.roi_heads.box_predictor.test_score_thresh = thresh
    return predictor, images, eager


def check_documented_layout(predictor, cfg, images, eager, thresh):
    """boxes N x 4, scores N, classes N, keypoints N x K x 3 in original image pixels: checked
    on the first image with detections whose size is not the graph's input size."""
    resized = [
        i
        for i, image in enumerate(images)
        if len(eager[i]) and preprocess(image, cfg)[0].shape[1:] != image.shape[:2]
    ]
    assert resized, f"no resized image with detections: {counts(eager)}"
    image, expected = images[resized[0]], eager[resized[0]]
    tensor, size = preprocess(image, cfg)
    boxes, scores, classes, keypoints = predictor.run(tensor, size)
    n = boxes.shape[0]
    assert n == len(expected) and boxes.shape == (n, 4)
    assert scores.shape == (n,) and classes.shape == (n,)
    assert keypoints.shape == (n, cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS, 3)
    assert classes.dtype == torch.int64
    height, width = image.shape[:2]
    assert float(boxes[:, 2].max()) <= width and float(boxes[:, 3].max()) <= height
    # Original pixels: the eager model's boxes, which detector_postprocess rescales itself.
    assert torch.allclose(boxes, expected.pred_boxes.tensor, atol=1.0)
    scale = width / tensor.shape[2]
    assert abs(scale - 1) > 0.2  # a box left in input pixels would be off by this factor
    assert predictor.metadata["input_format"] == "BGR"
    assert float(predictor.metadata["score_thresh_test"]) == pytest.approx(thresh)
