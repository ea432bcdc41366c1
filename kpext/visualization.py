"""Drawing keypoints: one skeleton drawer for every keypoint set, and pictures of predictions.

:func:`draw_skeletons` is the drawer. It connects keypoints by the dataset
metadata's ``keypoint_connection_rules`` (Detectron2's ``(name_a, name_b,
(r, g, b))``, matched to ``keypoint_names``), so it draws COCO people, faces
or any other registered keypoint set alike. The pictures of predictions
(:func:`draw_keypoint_predictions`), the video pipeline
(:func:`kpext.video.pipeline.draw_tracked_persons`) and RepCounter draw with it.
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances

from .geometry import continuous_to_coco
from .io import atomic_imwrite
from .preprocessing import model_input

__all__ = [
    "Color",
    "DEFAULT_POINT_COLOR",
    "skeleton_edges",
    "instance_color",
    "draw_skeletons",
    "draw_annotations",
    "scale_instances",
    "draw_keypoint_predictions",
    "detections_to_draw",
    "write_prediction_picture",
    "save_prediction_pictures",
    "save_test_pictures",
]

Color = Tuple[int, int, int]  # (r, g, b) in 0..255, as in keypoint_connection_rules

# Detectron2's Visualizer draws keypoints in this red.
DEFAULT_POINT_COLOR: Color = (255, 0, 0)
# cv2 draws at sub-pixel positions given as integers times 2**_SHIFT.
_SHIFT = 4


def skeleton_edges(metadata: Any, num_keypoints: int) -> List[Tuple[int, int, Color]]:
    """``(index_a, index_b, (r, g, b))`` for each of the metadata's connection rules.

    ``metadata`` is anything with ``.get(key, default)`` (a Detectron2 ``Metadata``
    or a dict) holding ``keypoint_names`` and ``keypoint_connection_rules``; rules
    naming a keypoint that is not in ``keypoint_names`` are skipped (Detectron2's
    Visualizer skips them too). Raises ValueError when the names do not number
    ``num_keypoints``.
    """
    names = list(metadata.get("keypoint_names", None) or [])
    if len(names) != num_keypoints:
        raise ValueError(
            f"the metadata names {len(names)} keypoints, but the keypoints have {num_keypoints}"
        )
    index = {name: i for i, name in enumerate(names)}
    edges = []
    for name_a, name_b, color in metadata.get("keypoint_connection_rules", None) or []:
        if name_a in index and name_b in index:
            edges.append((index[name_a], index[name_b], tuple(int(c) for c in color)))
    return edges


def instance_color(index: int) -> Color:
    """A fixed colour for an instance or track number, so that a person keeps their colour."""
    from detectron2.utils.colormap import colormap

    colors = colormap(rgb=True, maximum=255)
    return tuple(int(c) for c in colors[(index * 7) % len(colors)])


def _bgr(color: Color) -> Tuple[int, int, int]:
    r, g, b = color
    return int(b), int(g), int(r)


def _fixed(xy: np.ndarray) -> Tuple[int, int]:
    return int(round(xy[0] * (1 << _SHIFT))), int(round(xy[1] * (1 << _SHIFT)))


def _draw_label(
    image: np.ndarray, text: str, corner: Tuple[float, float], color: Color, scale: float
) -> None:
    """``text`` on a box of ``color`` whose bottom-left corner is ``corner`` (moved inside
    the image)."""
    thickness = max(1, int(round(scale * 2)))
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(min(max(corner[0], 0), max(image.shape[1] - width, 0)))
    y = int(min(max(corner[1], height + baseline), image.shape[0]))
    cv2.rectangle(image, (x, y - height - baseline), (x + width, y), _bgr(color), -1)
    # dark text on light boxes, light text on dark ones
    text_color = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(
        image,
        text,
        (x, y - baseline),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        text_color,
        thickness,
        cv2.LINE_AA,
    )


def _draw_person(
    out: np.ndarray,
    xy: np.ndarray,
    shown: np.ndarray,
    hidden: np.ndarray,
    edges: Sequence[Tuple[int, int, Color]],
    point_colors: Sequence[Color],
    thickness: int,
    radius: int,
) -> None:
    """One person's skeleton into ``out``: the lines between shown keypoints, then the shown
    keypoints (rings where ``hidden``) at their pixel-index ``xy``."""
    for a, b, color in edges:
        if shown[a] and shown[b]:
            cv2.line(out, _fixed(xy[a]), _fixed(xy[b]), _bgr(color), thickness, cv2.LINE_AA, _SHIFT)
    for k in np.flatnonzero(shown):
        fill = 1 if hidden[k] else -1
        cv2.circle(
            out, _fixed(xy[k]), radius << _SHIFT, _bgr(point_colors[k]), fill, cv2.LINE_AA, _SHIFT
        )


def draw_skeletons(
    image_bgr: np.ndarray,
    keypoints: np.ndarray,
    metadata: Any,
    keypoint_threshold: float = 0.05,
    *,
    boxes: Optional[np.ndarray] = None,
    labels: Optional[Sequence[str]] = None,
    colors: Optional[Sequence[Color]] = None,
    point_colors: Optional[Sequence[Color]] = None,
    hidden: Optional[np.ndarray] = None,
    continuous: bool = True,
    thickness: Optional[int] = None,
) -> np.ndarray:
    """A copy of ``image_bgr`` with each person's skeleton, and optionally their box and label.

    Args:
        image_bgr: H x W x 3 uint8.
        keypoints: N x K x 3 (x, y, score or COCO visibility), or K x 3 for one person.
        metadata: ``.get``-able with ``keypoint_names`` (K) and ``keypoint_connection_rules``
            (see :func:`skeleton_edges`); lines take the rules' colours.
        keypoint_threshold: keypoints whose third value is at most this are not drawn,
            nor are the lines that end at them.
        boxes: N x 4 XYXY, drawn in the person's colour; None = no boxes.
        labels: N texts drawn at the top-left corner of the box (or above the
            topmost drawn keypoint without boxes).
        colors: N (r, g, b) colours of the boxes and labels; default :func:`instance_color`.
        point_colors: K (r, g, b) colours of the keypoints; default :data:`DEFAULT_POINT_COLOR`.
        hidden: N x K bool, keypoints drawn as rings instead of dots (COCO's
            visibility 1: labelled but occluded).
        continuous: whether ``keypoints`` and ``boxes`` are in Detectron2's continuous
            coordinates (predictions, the default), turned into the pixel indices OpenCV
            draws at by :func:`kpext.geometry.continuous_to_coco`; False for COCO's
            pixel-index coordinates (annotation files), drawn as they are.
        thickness: line width in pixels; default grows with the image size.
    """
    out = np.ascontiguousarray(image_bgr).copy()
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.ndim == 2:
        kps = kps[None]
    if kps.ndim != 3 or kps.shape[2] < 3:
        raise ValueError(f"expected N x K x 3 keypoints, got shape {np.shape(keypoints)}")
    num_people, num_keypoints = kps.shape[:2]
    if num_people == 0:
        return out
    edges = skeleton_edges(metadata, num_keypoints)
    if thickness is None:
        thickness = max(1, int(round(np.sqrt(out.shape[0] * out.shape[1]) / 300)))
    radius = thickness + 1
    font_scale = max(0.3, np.sqrt(out.shape[0] * out.shape[1]) / 1000)
    hidden = (
        np.zeros((num_people, num_keypoints), bool) if hidden is None else np.asarray(hidden, bool)
    )
    hidden = hidden.reshape(num_people, num_keypoints)
    point_colors = (
        [DEFAULT_POINT_COLOR] * num_keypoints if point_colors is None else list(point_colors)
    )
    colors = [instance_color(i) for i in range(num_people)] if colors is None else list(colors)

    def drawn_at(coords: np.ndarray) -> np.ndarray:
        return continuous_to_coco(coords) if continuous else coords

    for person in range(num_people):
        xy = drawn_at(kps[person, :, :2])
        shown = kps[person, :, 2] > keypoint_threshold
        _draw_person(out, xy, shown, hidden[person], edges, point_colors, thickness, radius)
        if boxes is not None:
            x0, y0, x1, y1 = drawn_at(np.asarray(boxes[person], dtype=np.float64))
            color = _bgr(colors[person])
            cv2.rectangle(
                out, _fixed((x0, y0)), _fixed((x1, y1)), color, thickness, cv2.LINE_AA, _SHIFT
            )
            corner = (x0, y0)
        elif shown.any():
            corner = (xy[shown, 0].min(), xy[shown, 1].min() - radius)
        else:
            corner = None
        if labels is not None and corner is not None:
            _draw_label(out, labels[person], corner, colors[person], font_scale)
    return out


def draw_annotations(
    image_bgr: np.ndarray, annotations: Sequence[Any], metadata: Any
) -> np.ndarray:
    """A copy of ``image_bgr`` with labelled keypoints drawn (dataset previews).

    Args:
        annotations: COCO annotation dicts (``keypoints`` as flat x, y, v triples in
            COCO pixel indices) or K x 3 arrays of the same.
        metadata: the dataset's metadata (``MetadataCatalog.get(name)`` or a dict with
            ``keypoint_names`` and ``keypoint_connection_rules``); lines take the rules'
            colours (the synthetic and COCO sets: left orange, right blue, centre green).
    Labelled keypoints (v > 0) are drawn; occluded ones (v = 1) as rings.
    """
    rows = [
        np.asarray(a.get("keypoints") if isinstance(a, dict) else a, dtype=np.float64).reshape(
            -1, 3
        )
        for a in annotations
    ]
    if not rows:
        return np.ascontiguousarray(image_bgr).copy()
    kps = np.stack(rows)
    return draw_skeletons(
        image_bgr, kps, metadata, 0.0, hidden=kps[..., 2] == 1, continuous=False, thickness=1
    )


def scale_instances(instances: Instances, factor: float) -> Instances:
    """Copy of predictions with boxes and keypoint coordinates multiplied by ``factor``."""
    out = Instances(
        (int(round(instances.image_size[0] * factor)), int(round(instances.image_size[1] * factor)))
    )
    for name, value in instances.get_fields().items():
        if name == "pred_boxes":
            value = value.clone()
            value.scale(factor, factor)
        elif name == "pred_keypoints":
            value = value.clone()
            value[..., :2] *= factor
        out.set(name, value)
    return out


def _prediction_labels(instances: Instances, metadata: Any) -> List[str]:
    """``"person 98%"`` per detection (Detectron2's Visualizer's labels)."""
    classes = metadata.get("thing_classes", None)
    labels = []
    for i, score in enumerate(instances.scores.tolist()):
        name = ""
        if classes and instances.has("pred_classes"):
            name = classes[int(instances.pred_classes[i])] + " "
        labels.append(f"{name}{score:.0%}")
    return labels


def draw_keypoint_predictions(
    image_bgr: np.ndarray,
    instances: Instances,
    metadata: Any,
    keypoint_threshold: float = 0.05,
    min_size: int = 0,
) -> np.ndarray:
    """Boxes, labels (class and score) and skeletons (:func:`draw_skeletons`); returns a BGR image.

    ``keypoint_threshold`` hides keypoints whose score is not higher; images whose
    short side is below ``min_size`` are enlarged first so that labels stay legible.
    """
    instances = instances.to("cpu")
    factor = max(1.0, min_size / min(image_bgr.shape[:2]))
    if factor > 1.0:
        image_bgr = cv2.resize(
            image_bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR
        )
        instances = scale_instances(instances, factor)
    if len(instances) == 0 or not instances.has("pred_keypoints"):
        return np.ascontiguousarray(image_bgr).copy()
    return draw_skeletons(
        image_bgr,
        instances.pred_keypoints.numpy(),
        metadata,
        keypoint_threshold,
        boxes=instances.pred_boxes.tensor.numpy() if instances.has("pred_boxes") else None,
        labels=_prediction_labels(instances, metadata),
    )


def detections_to_draw(
    instances: Instances, score_threshold: float, max_detections: int = 0
) -> Instances:
    """The detections scoring at least ``score_threshold``, best first, at most
    ``max_detections`` of them (0: all)."""
    instances = instances[instances.scores >= score_threshold]
    order = torch.argsort(instances.scores, descending=True)
    if max_detections > 0:
        order = order[:max_detections]
    return instances[order]


def write_prediction_picture(
    predict: Callable[[np.ndarray], Instances],
    image_path: str,
    picture_path: str,
    metadata: Any,
    cfg,
    score_threshold: Optional[float] = None,
    max_detections: int = 0,
) -> Instances:
    """Predict, draw, write: the one path from an image file to a picture of its predictions
    (the test pictures after training, ``demo.py``'s images).

    Reads ``image_path`` (BGR), runs ``predict`` on it (a BGR image -> its ``Instances``),
    keeps the detections :func:`detections_to_draw` keeps when ``score_threshold`` is given
    (else all, in their order), draws them (:func:`draw_keypoint_predictions`, with
    ``TEST.KPEXT.VIS_KEYPOINT_THRESHOLD`` and ``VIS_MIN_SIZE``) and writes the picture to
    ``picture_path`` whole (:func:`kpext.io.atomic_imwrite`). Returns the detections drawn.

    Raises:
        FileNotFoundError: OpenCV cannot read the image; OSError: the picture cannot be written.
    """
    image = cv2.imread(image_path)
    if image is None:
        raise FileNotFoundError(f"cannot read image {image_path}")
    instances = predict(image)
    if score_threshold is not None:
        instances = detections_to_draw(instances, score_threshold, max_detections)
    picture = draw_keypoint_predictions(
        image,
        instances,
        metadata,
        cfg.TEST.KPEXT.VIS_KEYPOINT_THRESHOLD,
        cfg.TEST.KPEXT.VIS_MIN_SIZE,
    )
    atomic_imwrite(picture_path, picture)
    return instances


@torch.no_grad()
def save_prediction_pictures(
    cfg, model, dataset_name: str, out_dir: str, num_images: int
) -> List[str]:
    """Run ``model`` on the first ``num_images`` of a dataset and save pictures of its
    predictions (:func:`write_prediction_picture`; the detections ``TEST.KPEXT.VIS_*`` keep).

    Returns the written file paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    records = DatasetCatalog.get(dataset_name)[:num_images]
    metadata = MetadataCatalog.get(dataset_name)

    def predict(image: np.ndarray) -> Instances:
        return model([model_input(image, cfg)])[0]["instances"]

    was_training = model.training
    model.eval()
    written = []
    for record in records:
        name = os.path.splitext(os.path.basename(record["file_name"]))[0]
        path = os.path.join(out_dir, name + ".jpg")
        try:
            write_prediction_picture(
                predict,
                record["file_name"],
                path,
                metadata,
                cfg,
                cfg.TEST.KPEXT.VIS_SCORE_THRESHOLD,
                cfg.TEST.KPEXT.VIS_MAX_DETECTIONS,
            )
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{dataset_name}: {e}") from None
        written.append(path)
    model.train(was_training)
    return written


def save_test_pictures(cfg, model) -> List[str]:
    """After training or evaluation: pictures of the predictions on the first
    ``TEST.KPEXT.NUM_VIS`` images of every test set: the first set's in
    ``OUTPUT_DIR/predictions``, each later set's in ``OUTPUT_DIR/predictions/<set name>``.

    Does nothing (returns []) when ``NUM_VIS`` is 0, without a test set, or
    outside the main process. Returns the written file paths.
    """
    from detectron2.utils import comm

    if cfg.TEST.KPEXT.NUM_VIS <= 0 or not cfg.DATASETS.TEST or not comm.is_main_process():
        return []
    # only this process draws: the bare model, as a DistributedDataParallel forward could wait
    # for the others
    model = getattr(model, "module", model)
    paths = []
    for index, dataset_name in enumerate(cfg.DATASETS.TEST):
        out_dir = os.path.join(cfg.OUTPUT_DIR, "predictions")
        if index:
            out_dir = os.path.join(out_dir, dataset_name)
        written = save_prediction_pictures(
            cfg, model, dataset_name, out_dir, cfg.TEST.KPEXT.NUM_VIS
        )
        print(
            f"Wrote {len(written)} pictures of predictions on {dataset_name} to "
            f"{os.path.abspath(out_dir)}",
            flush=True,
        )
        paths += written
    return paths
