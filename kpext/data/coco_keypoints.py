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

The file is read by :mod:`kpext.data.coco_json`, records are checked and normalised by
:mod:`kpext.data.coco_validation`, and the policy lives in :mod:`kpext.data.invalid_records`;
this module turns the kept records into Detectron2 dataset dicts and registers datasets.

Evaluation reads the normalised ground truth of the same records
(:func:`normalized_ground_truth`, written by :mod:`kpext.evaluation.ground_truth`),
so records skipped here are not ground truth either, and pycocotools finds
``iscrowd``, ``area`` and ``num_keypoints`` (the count of v > 0 points) everywhere.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..geometry import coco_to_continuous
from .coco_json import keypoint_names_or_error, read_coco_json, select_keypoint_categories
from .coco_validation import (
    OUTSIDE_IMAGE_MARGIN,
    duplicate_id_problem,
    evaluation_annotation,
    image_problem,
    normalize_annotation,
)
from .facing import read_yaw
from .invalid_records import (
    ON_INVALID_CHOICES,
    ProblemReporter,
    check_on_invalid,
    current_on_invalid,
    invalid_record_policy,
    record_problem,
)
from .keypoint_metadata import (
    KeypointDataError,
    is_number,
    keypoint_dataset_metadata,
    normalize_skeleton,
)
from .normalization import EVALUATION_RULES, TRAINING_RULES, Normalizations, first_time

__all__ = [
    "KeypointDataError",
    "register_keypoint_coco",
    "load_keypoint_coco_json",
    "normalized_ground_truth",
    "ground_truth_key",
    # re-exported: the policy and the margin are part of the loader's documented interface
    "invalid_record_policy",
    "current_on_invalid",
    "ON_INVALID_CHOICES",
    "OUTSIDE_IMAGE_MARGIN",
]

logger = logging.getLogger(__name__)


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
    """``annotation`` is normalised (:func:`normalize_annotation`). A numeric ``"yaw"`` (the
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
    images: Iterable[Any], image_root: str, check_images: bool, policy: ProblemReporter
) -> Tuple[Dict[Any, Dict[str, Any]], set]:
    """Records of the valid images by id, and the ids of the images dropped."""
    records: Dict[Any, Dict[str, Any]] = {}
    dropped = set()
    for index, image in enumerate(images):
        where = f"image id {image.get('id')}" if isinstance(image, dict) else f"image #{index}"
        problem = image_problem(image)
        if problem is None:
            record = _image_record(image, image_root)
            if check_images and not os.path.isfile(record["file_name"]):
                problem = record_problem(
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
    check_on_invalid(on_invalid)
    data = read_coco_json(json_file)
    categories = select_keypoint_categories(data, json_file, category_name)
    names = keypoint_names_or_error(categories[0], json_file)
    if dataset_name is not None:
        _sync_dataset_metadata(dataset_name, json_file, categories)
    contiguous_ids = {c["id"]: i for i, c in enumerate(categories)}
    all_category_ids = {c["id"] for c in data["categories"]}

    policy = ProblemReporter(json_file, on_invalid, logger)
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
        problem = duplicate_id_problem(annotation, where, seen_ids)
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
        normalized, problem = normalize_annotation(
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
            ground_truth.append(evaluation_annotation(normalized, notes, where))

    dataset_dicts = [records[image_id] for image_id in sorted(records)]
    file_key = _file_key(json_file, category_name, keypoints_field)
    _log_load(policy, notes, json_file, file_key, check_images, dataset_dicts, num_annotations)
    if not with_ground_truth:
        return _Loaded(dataset_dicts, None)
    _number_annotations(ground_truth, notes)
    notes.log(json_file, EVALUATION_RULES, file_key)
    kept_images = [i for i in data["images"] if isinstance(i, dict) and i.get("id") in records]
    return _Loaded(
        dataset_dicts, _evaluation_coco(json_file, kept_images, ground_truth, categories, names)
    )


def _log_load(
    policy: ProblemReporter,
    notes: Normalizations,
    json_file: str,
    file_key: Tuple,
    check_images: bool,
    dataset_dicts: List[Dict[str, Any]],
    num_annotations: int,
) -> None:
    """What a load says: the skip summary (once per file and setting), the normalisations
    training sees, and the counts loaded."""
    if policy.skipped and first_time(file_key, f"skipped ({check_images})"):
        policy.log_summary(len(dataset_dicts), num_annotations)
    notes.log(json_file, TRAINING_RULES, file_key)
    logger.info(
        "Loaded %d images with %d keypoint annotations from %s",
        len(dataset_dicts),
        num_annotations,
        json_file,
    )


def _evaluation_coco(
    json_file: str,
    images: List[Dict[str, Any]],
    annotations: List[Dict[str, Any]],
    categories: List[Dict[str, Any]],
    names: List[str],
) -> Dict[str, Any]:
    """The normalised COCO ground truth of the records a load kept (pycocotools' input)."""
    return {
        "info": {"description": f"{json_file}, normalised by kpext for evaluation"},
        "images": images,
        "annotations": annotations,
        # Registration already warned about the skeleton.
        "categories": [
            {**c, "skeleton": normalize_skeleton(c.get("skeleton"), len(names))[0]}
            for c in categories
        ],
    }


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
        check_on_invalid(on_invalid)
    if name in DatasetCatalog.list():
        raise ValueError(
            f"Dataset '{name}' is already registered; call DatasetCatalog.remove('{name}') "
            f"and MetadataCatalog.remove('{name}') before registering it again"
        )
    if categories is None:
        data = read_coco_json(json_file)
        categories = select_keypoint_categories(data, json_file, category_name)
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
