"""COCO-format keypoint datasets for Detectron2, with a bad-input policy.

:func:`register_keypoint_coco` registers a COCO keypoint JSON (any number of
keypoints K) in Detectron2's ``DatasetCatalog``/``MetadataCatalog``;
:func:`load_keypoint_coco_json` turns it into Detectron2 dataset dicts identical
to :func:`detectron2.data.datasets.load_coco_json` for the keypoint fields, after
checking every record. The keypoint metadata registered with a dataset (flip
pairs, skeleton colours, OKS sigmas) is derived by :mod:`kpext.data.keypoint_metadata`;
coordinates follow the pixel conventions of :mod:`kpext.geometry`.

Bad-input policy. A problem in a single record (an annotation or an image) raises
:class:`KeypointDataError` naming the JSON file and the annotation / image id with
``on_invalid="error"`` (the default), or drops that record with
``on_invalid="skip"``; in the latter case one warning per load counts the skipped
records by reason and quotes the first few. Problems with the file as a whole
(unreadable, malformed JSON, missing top-level keys, no keypoint category) always
raise: there is nothing sensible to skip to. The checks:

* an annotation's ``keypoints`` is not a list of 3*K numbers;
* a keypoint coordinate is NaN/infinite, or a visibility is not 0, 1 or 2;
* a keypoint with v > 0 lies more than :data:`OUTSIDE_IMAGE_MARGIN` (10%) of the
  image width/height outside the image. COCO's own annotations legitimately put
  points a few pixels outside the image (clicks on the border, truncated people),
  so only points well beyond that are treated as wrong (swapped x/y, coordinates
  of another image, a wrong resize);
* ``bbox`` is not 4 finite numbers, or a non-crowd box has width/height <= 0;
* an annotation's ``image_id`` or ``category_id`` is not listed in the file;
* an image entry without a positive ``width``/``height`` or a ``file_name``, or
  (with ``check_images=True``) whose file does not exist;
* two annotations share an ``id`` (pycocotools would keep only one of them).

Before the checks, deviations real datasets publish are normalised, one rule each
(:mod:`kpext.data.normalization`, listed with their warnings in ``datasets/README.md``):
missing ``iscrowd``, ``area``, ``num_keypoints``, ``bbox`` (from centre/scale or the
labelled keypoints) or ``id``; nested ``[[x, y, v], ...]`` keypoints; 0-based or
out-of-range skeletons. Keypoints of the wrong length next to a field of the right
length (``keypoints_21``) stop with an error naming that field and
``keypoints_field=``, under either policy.

Evaluation reads the normalised ground truth of the same records
(:func:`normalized_ground_truth`, written by :mod:`kpext.evaluation.ground_truth`),
so records skipped here are not ground truth either, and pycocotools finds
``iscrowd``, ``area`` and ``num_keypoints`` (the count of v > 0 points) everywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections import Counter, OrderedDict
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..geometry import coco_to_continuous
from .facing import read_yaw
from .keypoint_metadata import (
    KeypointDataError,
    describe_category,
    is_number,
    keypoint_dataset_metadata,
    keypoint_names_of,
    normalize_skeleton,
)
from .normalization import (
    EVALUATION_RULES,
    TRAINING_RULES,
    Normalizations,
    bbox_from_center_scale,
    bbox_from_keypoints,
    count_labelled,
    first_time,
    flatten_keypoints,
    sibling_keypoints_field,
)

__all__ = [
    "KeypointDataError",
    "register_keypoint_coco",
    "load_keypoint_coco_json",
    "normalized_ground_truth",
    "ground_truth_key",
    "invalid_record_policy",
    "current_on_invalid",
    "ON_INVALID_CHOICES",
    "OUTSIDE_IMAGE_MARGIN",
]

logger = logging.getLogger(__name__)

ON_INVALID_CHOICES: Tuple[str, ...] = ("error", "skip")

# Fraction of the image width (height) a visible keypoint may lie left/right of
# (above/below) the image before it is considered invalid; see the module docstring.
OUTSIDE_IMAGE_MARGIN: float = 0.10

_VALID_VISIBILITIES = (0, 1, 2)

# How many skipped records the summary warning quotes.
_QUOTED_SKIPS = 5

_REQUIRED_TOP_LEVEL_KEYS = ("images", "annotations", "categories")


# --------------------------------------------------------------------------- #
# Reading the file (cached, so registration and the lazy load parse it once)
# --------------------------------------------------------------------------- #

# (absolute path, mtime_ns, size) -> parsed JSON. Bounded because a parsed COCO
# train file takes gigabytes; the file key changes whenever the file is rewritten.
_PARSED_JSON_CACHE: "OrderedDict[Tuple[str, int, int], Dict[str, Any]]" = OrderedDict()
_PARSED_JSON_CACHE_SIZE = 4


def _parse_json_file(path: str, json_file: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise KeypointDataError(
            f"{json_file}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from e
    except UnicodeDecodeError as e:
        raise KeypointDataError(f"{json_file}: not UTF-8 text ({e.reason})") from e


def _check_top_level(data: Any, json_file: str) -> None:
    if not isinstance(data, dict):
        raise KeypointDataError(
            f"{json_file}: expected a JSON object with 'images', 'annotations' and "
            f"'categories', got {type(data).__name__}"
        )
    missing = [key for key in _REQUIRED_TOP_LEVEL_KEYS if key not in data]
    if missing:
        raise KeypointDataError(
            f"{json_file}: missing required key(s) {', '.join(map(repr, missing))}; a COCO "
            "keypoint file needs 'images', 'annotations' and 'categories'"
        )
    for key in _REQUIRED_TOP_LEVEL_KEYS:
        if not isinstance(data[key], list):
            raise KeypointDataError(
                f"{json_file}: '{key}' must be a list, got {type(data[key]).__name__}"
            )


def _read_coco_json(json_file: str) -> Dict[str, Any]:
    """Parse ``json_file`` (or reuse the parse of the same unchanged file) and check
    its top-level structure. The result is shared: callers must not mutate it."""
    path = os.path.abspath(os.fspath(json_file))
    try:
        stat = os.stat(path)
    except OSError as e:
        raise KeypointDataError(f"{json_file}: cannot read annotation file ({e.strerror})") from e
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key in _PARSED_JSON_CACHE:
        _PARSED_JSON_CACHE.move_to_end(key)
        return _PARSED_JSON_CACHE[key]

    data = _parse_json_file(path, json_file)
    _check_top_level(data, json_file)
    for stale in [k for k in _PARSED_JSON_CACHE if k[0] == path]:
        del _PARSED_JSON_CACHE[stale]
    _PARSED_JSON_CACHE[key] = data
    while len(_PARSED_JSON_CACHE) > _PARSED_JSON_CACHE_SIZE:
        _PARSED_JSON_CACHE.popitem(last=False)
    return data


def _select_keypoint_categories(
    data: Dict[str, Any], json_file: str, category_name: Optional[str]
) -> List[Dict[str, Any]]:
    """The categories whose annotations form the dataset, sorted by id.

    With ``category_name``: that category. Otherwise every category with a
    ``keypoints`` list, which must all share the same list (usually there is one).
    """
    categories = data["categories"]
    for category in categories:
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            raise KeypointDataError(f"{json_file}: category {category!r} needs 'id' and 'name'")

    if category_name is not None:
        named = [c for c in categories if c["name"] == category_name]
        if len(named) != 1:
            found = "no" if not named else f"{len(named)}"
            raise KeypointDataError(
                f"{json_file}: {found} category named {category_name!r} "
                f"(categories: {[c['name'] for c in categories]})"
            )
        if not named[0].get("keypoints"):
            raise KeypointDataError(
                f"{json_file}: {describe_category(named[0])} has no 'keypoints' list"
            )
        return named

    with_keypoints = sorted((c for c in categories if c.get("keypoints")), key=lambda c: c["id"])
    if not with_keypoints:
        raise KeypointDataError(
            f"{json_file}: no category has a 'keypoints' list, so this is not a COCO "
            f"keypoint file (categories: {[c['name'] for c in categories]})"
        )
    by_keypoint_list: Dict[Tuple, List[Dict[str, Any]]] = {}
    for category in with_keypoints:
        by_keypoint_list.setdefault(tuple(category["keypoints"]), []).append(category)
    if len(by_keypoint_list) > 1:
        groups = "; ".join(
            f"{[c['name'] for c in group]}: {len(names)} keypoints "
            f"({', '.join(map(str, names[:4]))}{', ...' if len(names) > 4 else ''})"
            for names, group in by_keypoint_list.items()
        )
        raise KeypointDataError(
            f"{json_file}: categories with different keypoint lists: {groups}. A dataset has "
            "one keypoint set: register one dataset per set, choosing its category with "
            f"register_keypoint_coco(..., category_name={with_keypoints[0]['name']!r})"
        )
    return with_keypoints


# --------------------------------------------------------------------------- #
# Validation of records
# --------------------------------------------------------------------------- #


_default_on_invalid = "error"


@contextlib.contextmanager
def invalid_record_policy(on_invalid: str) -> Iterator[None]:
    """Within the block, datasets registered without an explicit ``on_invalid`` load with this one.

    The trainer wraps its data loading in ``invalid_record_policy(cfg.DATASETS.KPEXT.ON_INVALID)``,
    so that the config decides for datasets registered before the config was read.
    """
    global _default_on_invalid
    _check_on_invalid(on_invalid)
    previous, _default_on_invalid = _default_on_invalid, on_invalid
    try:
        yield
    finally:
        _default_on_invalid = previous


def current_on_invalid() -> str:
    """The policy for datasets registered without ``on_invalid`` ("error" outside any block)."""
    return _default_on_invalid


def _check_on_invalid(on_invalid: str) -> None:
    if on_invalid not in ON_INVALID_CHOICES:
        raise ValueError(f"on_invalid must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}")


# A record's problem: (reason, detail) -- a short stable key that skips are
# counted by, and the message that follows the record's name.
_Problem = Tuple[str, str]


def _problem(reason: str, detail: str) -> _Problem:
    return reason, detail


def _image_problem(image: Any) -> Optional[_Problem]:
    if not isinstance(image, dict) or "id" not in image:
        return _problem("invalid image entry", f"image entry {image!r} has no 'id'")
    if not isinstance(image.get("file_name"), str) or not image["file_name"]:
        return _problem("invalid image entry", "has no 'file_name'")
    width, height = image.get("width"), image.get("height")
    if not (is_number(width) and is_number(height) and width > 0 and height > 0):
        return _problem(
            "invalid image entry", f"width/height must be positive numbers, got {width}/{height}"
        )
    return None


def _keypoints_problem(
    keypoints: Any, names: Sequence[str], width: float, height: float
) -> Optional[_Problem]:
    num_keypoints = len(names)
    expected = f"expected {3 * num_keypoints} ({num_keypoints} keypoints x 3)"
    if not isinstance(keypoints, list):
        return _problem(
            "keypoints not a list", f"keypoints is {type(keypoints).__name__}, {expected}"
        )
    if len(keypoints) != 3 * num_keypoints:
        return _problem(
            "wrong keypoints length", f"keypoints has {len(keypoints)} values, {expected}"
        )
    for index, value in enumerate(keypoints):
        if not is_number(value):
            return _problem(
                "non-numeric keypoint value",
                f"keypoints[{index}] ({names[index // 3]}) is {value!r}, not a number",
            )

    x_min, x_max = -OUTSIDE_IMAGE_MARGIN * width, (1 + OUTSIDE_IMAGE_MARGIN) * width
    y_min, y_max = -OUTSIDE_IMAGE_MARGIN * height, (1 + OUTSIDE_IMAGE_MARGIN) * height
    for i, name in enumerate(names):
        x, y, v = keypoints[3 * i : 3 * i + 3]
        if not (math.isfinite(x) and math.isfinite(y)):
            return _problem(
                "non-finite keypoint", f"keypoint {i} ({name}) has coordinates ({x}, {y})"
            )
        if v not in _VALID_VISIBILITIES:
            return _problem(
                "invalid visibility",
                f"keypoint {i} ({name}) has visibility {v}, expected 0, 1 or 2",
            )
        if v > 0 and not (x_min <= x <= x_max and y_min <= y <= y_max):
            return _problem(
                "keypoint outside image",
                f"keypoint {i} ({name}) at ({x}, {y}) is more than "
                f"{OUTSIDE_IMAGE_MARGIN:.0%} outside the {width}x{height} image",
            )
    return None


def _bbox_problem(bbox: Any, iscrowd: bool) -> Optional[_Problem]:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        return _problem("invalid bbox", f"bbox {bbox!r} is not [x, y, width, height]")
    if not all(math.isfinite(v) for v in bbox):
        return _problem("invalid bbox", f"bbox {bbox} has non-finite values")
    # Crowd regions are ignored by training and evaluation; do not reject them on size.
    if not iscrowd and (bbox[2] <= 0 or bbox[3] <= 0):
        return _problem("invalid bbox", f"bbox {bbox} has a non-positive width or height")
    return None


class _InvalidRecordPolicy:
    """Applies ``on_invalid`` to each problem: raise at once, or remember it for
    the one summary warning logged after loading."""

    def __init__(self, json_file: str, on_invalid: str):
        self.json_file = json_file
        self.on_invalid = on_invalid
        self.skipped: List[Tuple[str, str]] = []  # (reason, "<record>: <detail>")

    def report(self, where: str, problem: _Problem) -> None:
        reason, detail = problem
        if self.on_invalid == "error":
            raise KeypointDataError(f"{self.json_file}: {where}: {detail}", reason=reason)
        self.skipped.append((reason, f"{where}: {detail}"))

    def log_summary(self, num_images: int, num_annotations: int) -> None:
        if not self.skipped:
            return
        counts = Counter(reason for reason, _ in self.skipped)
        by_reason = ", ".join(f"{count} x {reason}" for reason, count in counts.most_common())
        quoted = "; ".join(message for _, message in self.skipped[:_QUOTED_SKIPS])
        more = "" if len(self.skipped) <= _QUOTED_SKIPS else "; ..."
        logger.warning(
            "%s: skipped %d invalid record(s) (on_invalid='skip'): %s. Kept %d images with "
            "%d annotations. First skipped: %s%s",
            self.json_file,
            len(self.skipped),
            by_reason,
            num_images,
            num_annotations,
            quoted,
            more,
        )


def _annotation_where(annotation: Dict[str, Any], index: int) -> str:
    ann_id = f"annotation id {annotation['id']}" if "id" in annotation else f"annotation #{index}"
    return f"{ann_id} (image id {annotation.get('image_id')})"


# --------------------------------------------------------------------------- #
# Conversion to Detectron2 dataset dicts
# --------------------------------------------------------------------------- #


def _image_record(image: Dict[str, Any], image_root: str) -> Dict[str, Any]:
    return {
        "file_name": os.path.join(image_root, image["file_name"]),
        "height": image["height"],
        "width": image["width"],
        "image_id": image["id"],
        "annotations": [],
    }


def _to_pixel_centres(keypoints: Sequence[float]) -> List[float]:
    # COCO keypoint coordinates are pixel indices; Detectron2's load_coco_json
    # turns every x and y (whatever v is) into continuous coordinates. Do the same
    # so that models and evaluation agree.
    return [
        coco_to_continuous(float(v)) if i % 3 != 2 else float(v) for i, v in enumerate(keypoints)
    ]


def _detectron2_annotation(annotation: Dict[str, Any], contiguous_id: int) -> Dict[str, Any]:
    """``annotation`` is normalised (:func:`_normalize_annotation`). A numeric ``"yaw"`` (the
    body's facing, :mod:`kpext.data.facing`) is kept for the facing target."""
    record = {
        "iscrowd": annotation["iscrowd"],
        "bbox": [float(v) for v in annotation["bbox"]],
        "keypoints": _to_pixel_centres(annotation["keypoints"]),
        "category_id": contiguous_id,
        "bbox_mode": BoxMode.XYWH_ABS,
    }
    yaw = read_yaw(annotation)
    if yaw is not None:
        record["yaw"] = yaw
    return record


def _load_images(
    images: Iterable[Any], image_root: str, check_images: bool, policy: _InvalidRecordPolicy
) -> Tuple[Dict[Any, Dict[str, Any]], set]:
    """Records of the valid images by id, and the ids of the images dropped."""
    records: Dict[Any, Dict[str, Any]] = {}
    dropped = set()
    for index, image in enumerate(images):
        where = f"image id {image.get('id')}" if isinstance(image, dict) else f"image #{index}"
        problem = _image_problem(image)
        if problem is None:
            record = _image_record(image, image_root)
            if check_images and not os.path.isfile(record["file_name"]):
                problem = _problem(
                    "missing image file", f"image file {record['file_name']} does not exist"
                )
        if problem is not None:
            policy.report(where, problem)
            if isinstance(image, dict):
                dropped.add(image.get("id"))
            continue
        records[image["id"]] = record
    return records, dropped


def _sync_dataset_metadata(
    dataset_name: str, json_file: str, categories: Sequence[Dict[str, Any]]
) -> None:
    """Set the class metadata of ``dataset_name`` like ``load_coco_json`` does, or,
    when it is already set (at registration), check the file still agrees."""
    meta = MetadataCatalog.get(dataset_name)
    expected = {
        "thing_classes": [c["name"] for c in categories],
        "thing_dataset_id_to_contiguous_id": {c["id"]: i for i, c in enumerate(categories)},
        "keypoint_names": list(categories[0]["keypoints"]),
    }
    for key, value in expected.items():
        current = meta.get(key)
        if current is None:
            setattr(meta, key, value)
            continue
        comparable = current if isinstance(current, dict) else list(current)
        if comparable != value:
            raise KeypointDataError(
                f"{json_file}: {key} in the file ({value}) differ from the metadata of "
                f"dataset '{dataset_name}' ({current}); was the file changed after "
                "registration? Register it again."
            )


def _normalize_annotation(
    annotation: Dict[str, Any],
    image: Dict[str, Any],
    names: Sequence[str],
    keypoints_field: str,
    notes: Normalizations,
    where: str,
    json_file: str,
) -> Tuple[Optional[Dict[str, Any]], Optional[_Problem]]:
    """A checked copy of ``annotation`` with flat ``keypoints`` (read from ``keypoints_field``),
    a ``bbox`` and ``iscrowd`` (:data:`~kpext.data.normalization.TRAINING_RULES`), or the
    annotation's problem. The parsed file is shared: ``annotation`` is not modified."""
    if keypoints_field not in annotation:
        return None, _problem("missing keypoints", f"has no '{keypoints_field}'")
    keypoints, nested = flatten_keypoints(annotation[keypoints_field])
    if isinstance(keypoints, list) and len(keypoints) != 3 * len(names):
        sibling = sibling_keypoints_field(annotation, keypoints_field, len(names))
        if sibling is not None:
            # Not a bad record but the wrong field for the whole file: skipping would drop
            # every annotation, so this is an error under either policy.
            raise KeypointDataError(
                f"{json_file}: {where}: '{keypoints_field}' has {len(keypoints)} values but "
                f"the category has {len(names)} keypoints ({3 * len(names)} values), which "
                f"the annotation's field '{sibling}' holds. Register the file with "
                f"register_keypoint_coco(..., keypoints_field='{sibling}') to read it.",
                reason="keypoints in another field",
            )
    problem = _keypoints_problem(keypoints, names, image["width"], image["height"])
    if problem is not None:
        return None, problem
    if nested:
        notes.note("nested keypoints", where)

    iscrowd = annotation.get("iscrowd")
    if iscrowd is None:
        notes.note("iscrowd", where)
        iscrowd = 0

    bbox = annotation.get("bbox")
    if bbox is None:
        bbox = bbox_from_center_scale(annotation, image["width"], image["height"])
        rule = "bbox from center/scale"
        if bbox is None:
            bbox = bbox_from_keypoints(keypoints, image["width"], image["height"])
            rule = "bbox from keypoints"
        if bbox is None:
            return None, _problem(
                "missing bbox",
                "has no 'bbox', no 'center'/'scale' and no labelled keypoint inside the image "
                "to take a box from; add a 'bbox' [x, y, width, height]",
            )
        notes.note(rule, where)
    problem = _bbox_problem(bbox, bool(iscrowd))
    if problem is not None:
        return None, problem
    return {**annotation, "keypoints": keypoints, "bbox": bbox, "iscrowd": iscrowd}, None


def _evaluation_annotation(
    annotation: Dict[str, Any], notes: Normalizations, where: str
) -> Dict[str, Any]:
    """``annotation`` (normalised) with the fields pycocotools reads: ``area`` (the box area
    when missing) and ``num_keypoints`` (the count of v > 0, which training uses)."""
    result = dict(annotation)
    if not is_number(annotation.get("area")):
        notes.note("area", where)
        result["area"] = float(annotation["bbox"][2] * annotation["bbox"][3])
    labelled = count_labelled(annotation["keypoints"])
    given = annotation.get("num_keypoints")
    if given is None:
        notes.note("num_keypoints missing", where)
    elif given != labelled:
        notes.note("num_keypoints disagrees", f"{where}: {given} given, {labelled} labelled")
    result["num_keypoints"] = labelled
    return result


def _duplicate_id_problem(
    annotation: Dict[str, Any], where: str, seen: Dict[Any, str]
) -> Optional[_Problem]:
    ann_id = annotation.get("id")
    if ann_id is None or not isinstance(ann_id, (int, str)):
        return None
    if ann_id in seen:
        return _problem(
            "duplicate annotation id",
            f"annotation id {ann_id!r} is also used by {seen[ann_id]} (pycocotools keeps only "
            "one annotation per id). Give each annotation its own id, or drop the later "
            "duplicates with on_invalid='skip' (DATASETS.KPEXT.ON_INVALID skip).",
        )
    seen[ann_id] = where
    return None


def _file_key(json_file: str, category_name: Optional[str], keypoints_field: str) -> Tuple:
    """Identifies one dataset read from one version of a file (for warnings logged once)."""
    path = os.path.abspath(os.fspath(json_file))
    try:
        stat = os.stat(path)
        version: Tuple = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = ()
    return (path, *version, category_name, keypoints_field)


class _Loaded:
    """What one pass over the file gives: Detectron2 records and, when asked, the normalised
    COCO ground truth of exactly those records."""

    def __init__(self, records: List[Dict[str, Any]], ground_truth: Optional[Dict[str, Any]]):
        self.records = records
        self.ground_truth = ground_truth


def _load(
    json_file: str,
    image_root: str,
    dataset_name: Optional[str],
    *,
    category_name: Optional[str],
    on_invalid: str,
    check_images: bool,
    keypoints_field: str,
    with_ground_truth: bool,
) -> _Loaded:
    _check_on_invalid(on_invalid)
    data = _read_coco_json(json_file)
    categories = _select_keypoint_categories(data, json_file, category_name)
    names = _keypoint_names_or_error(categories[0], json_file)
    if dataset_name is not None:
        _sync_dataset_metadata(dataset_name, json_file, categories)
    contiguous_ids = {c["id"]: i for i, c in enumerate(categories)}
    all_category_ids = {c["id"] for c in data["categories"]}

    policy = _InvalidRecordPolicy(json_file, on_invalid)
    notes = Normalizations()
    records, dropped_image_ids = _load_images(data["images"], image_root, check_images, policy)
    listed_image_ids = set(records) | dropped_image_ids
    seen_ids: Dict[Any, str] = {}
    ground_truth: List[Dict[str, Any]] = []
    num_annotations = 0
    for index, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict):
            policy.report(f"annotation #{index}", ("invalid annotation entry", "not an object"))
            continue
        where = _annotation_where(annotation, index)
        problem = _duplicate_id_problem(annotation, where, seen_ids)
        if problem is not None:
            policy.report(where, problem)
            continue
        category_id = annotation.get("category_id")
        if category_id not in all_category_ids:
            policy.report(
                where,
                ("unknown category id", f"category_id {category_id!r} is not in 'categories'"),
            )
            continue
        if category_id not in contiguous_ids:
            continue  # another (non-keypoint) category: not part of this dataset
        image_id = annotation.get("image_id")
        if image_id not in listed_image_ids:
            policy.report(where, ("unknown image id", f"image_id {image_id!r} is not in 'images'"))
            continue
        if image_id in dropped_image_ids:
            continue  # its image was already reported and skipped
        record = records[image_id]
        normalized, problem = _normalize_annotation(
            annotation, record, names, keypoints_field, notes, where, json_file
        )
        if problem is not None:
            policy.report(where, problem)
            continue
        record["annotations"].append(
            _detectron2_annotation(normalized, contiguous_ids[category_id])
        )
        num_annotations += 1
        if with_ground_truth:
            ground_truth.append(_evaluation_annotation(normalized, notes, where))

    dataset_dicts = [records[image_id] for image_id in sorted(records)]
    file_key = _file_key(json_file, category_name, keypoints_field)
    if policy.skipped and first_time(file_key, f"skipped ({check_images})"):
        policy.log_summary(len(dataset_dicts), num_annotations)
    notes.log(json_file, TRAINING_RULES, file_key)
    logger.info(
        "Loaded %d images with %d keypoint annotations from %s",
        len(dataset_dicts),
        num_annotations,
        json_file,
    )
    if not with_ground_truth:
        return _Loaded(dataset_dicts, None)
    _number_annotations(ground_truth, notes)
    notes.log(json_file, EVALUATION_RULES, file_key)
    kept_images = [i for i in data["images"] if isinstance(i, dict) and i.get("id") in records]
    coco = {
        "info": {"description": f"{json_file}, normalised by kpext for evaluation"},
        "images": kept_images,
        "annotations": ground_truth,
        # Registration already warned about the skeleton.
        "categories": [
            {**c, "skeleton": normalize_skeleton(c.get("skeleton"), len(names))[0]}
            for c in categories
        ],
    }
    return _Loaded(dataset_dicts, coco)


def _number_annotations(annotations: List[Dict[str, Any]], notes: Normalizations) -> None:
    """Give annotations without an ``id`` one after the largest id (pycocotools indexes by id)."""
    numeric = [a["id"] for a in annotations if is_number(a.get("id"))]
    next_id = int(max(numeric, default=0)) + 1
    for index, annotation in enumerate(annotations):
        if annotation.get("id") is None:
            notes.note("id missing", f"annotation #{index} (image id {annotation['image_id']})")
            annotation["id"] = next_id
            next_id += 1


def load_keypoint_coco_json(
    json_file: str,
    image_root: str,
    dataset_name: Optional[str] = None,
    *,
    category_name: Optional[str] = None,
    on_invalid: str = "error",
    check_images: bool = True,
    keypoints_field: str = "keypoints",
) -> List[Dict[str, Any]]:
    """Load a COCO keypoint JSON as Detectron2 dataset dicts, normalising and validating it.

    The dicts are those of :func:`detectron2.data.datasets.load_coco_json`
    restricted to the keypoint fields: ``file_name`` (joined with
    ``image_root``), ``height``, ``width``, ``image_id`` and ``annotations``, each
    with ``iscrowd``, ``bbox``, ``bbox_mode`` (XYWH_ABS), ``category_id``
    (contiguous, 0-based) and ``keypoints`` (3K floats, x and y made continuous by
    :func:`kpext.geometry.coco_to_continuous`: 0.5 added).
    Images are sorted by id, annotations kept in file order; images without
    annotations are kept. Only annotations of the keypoint categories are kept,
    and segmentations are not loaded (a keypoint model does not use them).
    Deviations from COCO's layout are normalised first (:mod:`kpext.data.normalization`).

    Args:
        json_file: path of the COCO keypoint JSON.
        image_root: directory the images' ``file_name`` are relative to.
        dataset_name: when given, its ``thing_classes``,
            ``thing_dataset_id_to_contiguous_id`` and ``keypoint_names`` metadata
            are set, or checked against the file if already set.
        category_name: the keypoint category to load; by default every category
            with a ``keypoints`` list (they must share it).
        on_invalid: "error" raises on the first invalid record, "skip" drops
            invalid records and logs one summary warning.
        check_images: check that every image file exists.
        keypoints_field: the annotation field holding the keypoints (e.g. "keypoints_21").

    Raises:
        KeypointDataError: invalid file, or (with on_invalid="error") record.
        ValueError: ``on_invalid`` is not "error" or "skip".
    """
    return _load(
        json_file,
        image_root,
        dataset_name,
        category_name=category_name,
        on_invalid=on_invalid,
        check_images=check_images,
        keypoints_field=keypoints_field,
        with_ground_truth=False,
    ).records


def _keypoint_names_or_error(category: Dict[str, Any], json_file: str) -> List[str]:
    try:
        return keypoint_names_of(category)
    except KeypointDataError as e:
        raise KeypointDataError(f"{json_file}: {describe_category(category)}: {e}") from e


# --------------------------------------------------------------------------- #
# Registration
# --------------------------------------------------------------------------- #


# dataset name -> how register_keypoint_coco loads it, for the evaluation ground truth.
_REGISTERED_LOADS: Dict[str, Dict[str, Any]] = {}


def register_keypoint_coco(
    name: str,
    json_file: str,
    image_root: str,
    *,
    category_name: Optional[str] = None,
    oks_sigmas: Union[None, str, Sequence[float]] = None,
    on_invalid: Optional[str] = None,
    check_images: bool = True,
    categories: Optional[Sequence[Dict[str, Any]]] = None,
    keypoints_field: str = "keypoints",
    flip_map: Optional[Sequence[Sequence[str]]] = None,
) -> None:
    """Register a COCO keypoint JSON as Detectron2 dataset ``name``.

    The metadata (``json_file``, ``image_root``, ``evaluator_type="coco"``,
    ``thing_classes``, ``thing_dataset_id_to_contiguous_id`` and the keypoint
    fields of :func:`keypoint_metadata_from_category`) is read from the JSON now;
    the records are loaded by :func:`load_keypoint_coco_json` when
    ``DatasetCatalog.get(name)`` is called, reusing the parse done here if the
    file has not changed. Evaluation reads the normalised ground truth of the same
    records (:func:`normalized_ground_truth`), not the raw file.

    Args:
        name: dataset name; must not be registered yet.
        json_file, image_root, category_name, check_images, keypoints_field: see
            :func:`load_keypoint_coco_json`.
        on_invalid: see :func:`load_keypoint_coco_json`; None (default) uses the
            policy in force when the records are loaded (:func:`invalid_record_policy`,
            set from ``DATASETS.KPEXT.ON_INVALID`` by the trainer; "error" otherwise).
        oks_sigmas: one sigma per keypoint, or "coco" for COCO's by name; by default
            COCO's for a person category, the documented default otherwise (see
            :func:`keypoint_metadata_from_category`).
        flip_map: (left, right) keypoint name pairs swapped by horizontal flips; by
            default found from the names. ``[]`` declares a symmetric set (no pairs, and
            flipping is still allowed).
        categories: COCO category dicts to take the metadata from instead of
            reading the JSON now, for a file that is generated later. The load
            then checks the file agrees with them.

    Raises:
        ValueError: ``name`` is already registered (registering a name twice is a
            mistake here: remove it from ``DatasetCatalog`` and ``MetadataCatalog``
            first), or ``on_invalid`` is invalid.
        KeypointDataError: the file or its keypoint category is invalid.
    """
    if on_invalid is not None:
        _check_on_invalid(on_invalid)
    if name in DatasetCatalog.list():
        raise ValueError(
            f"Dataset '{name}' is already registered; call DatasetCatalog.remove('{name}') "
            f"and MetadataCatalog.remove('{name}') before registering it again"
        )
    if categories is None:
        data = _read_coco_json(json_file)
        categories = _select_keypoint_categories(data, json_file, category_name)
    metadata = keypoint_dataset_metadata(
        categories, oks_sigmas, source=json_file, flip_map=flip_map
    )
    options = dict(
        json_file=json_file,
        image_root=image_root,
        dataset_name=name,
        category_name=category_name,
        on_invalid=on_invalid,
        check_images=check_images,
        keypoints_field=keypoints_field,
    )

    def load() -> List[Dict[str, Any]]:
        return _load_registered(options, with_ground_truth=False).records

    # Metadata first: if it clashes with stale metadata of a removed dataset of the
    # same name, nothing is left half-registered in DatasetCatalog.
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata
    )
    DatasetCatalog.register(name, load)
    _REGISTERED_LOADS[name] = options


def _load_registered(options: Dict[str, Any], with_ground_truth: bool) -> _Loaded:
    args = dict(options)
    json_file, image_root, dataset_name = (
        args.pop("json_file"),
        args.pop("image_root"),
        args.pop("dataset_name"),
    )
    args["on_invalid"] = args["on_invalid"] or current_on_invalid()
    return _load(json_file, image_root, dataset_name, with_ground_truth=with_ground_truth, **args)


def ground_truth_key(dataset_name: str) -> Optional[str]:
    """A string that changes whenever :func:`normalized_ground_truth` of the dataset could:
    the file's path, size and modification time, the load options and the policy in force.
    None for a dataset not registered by :func:`register_keypoint_coco`."""
    options = _REGISTERED_LOADS.get(dataset_name)
    if options is None or dataset_name not in DatasetCatalog.list():
        return None
    file_key = _file_key(options["json_file"], options["category_name"], options["keypoints_field"])
    effective = {**options, "on_invalid": options["on_invalid"] or current_on_invalid()}
    return repr((_GROUND_TRUTH_FORMAT, file_key, sorted(effective.items())))


# Bump when the normalised ground truth written for the same input changes.
_GROUND_TRUTH_FORMAT = 1


def normalized_ground_truth(dataset_name: str) -> Optional[Dict[str, Any]]:
    """The COCO ground truth of what training reads from a dataset registered by
    :func:`register_keypoint_coco`: the records kept by the load (same policy), each
    annotation with flat ``keypoints``, ``bbox``, ``iscrowd``, ``area``, ``num_keypoints``
    and ``id`` (:mod:`kpext.data.normalization`), the keypoint categories with their
    normalised skeleton. None for datasets registered otherwise."""
    if ground_truth_key(dataset_name) is None:
        return None
    return _load_registered(_REGISTERED_LOADS[dataset_name], with_ground_truth=True).ground_truth
