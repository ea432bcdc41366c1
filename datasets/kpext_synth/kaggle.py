"""The Kaggle facial-keypoints CSV format and its conversion to COCO keypoint JSON
(``datasets/kaggle_faces_to_coco.py``). The face datasets' files, category and
registration are kpext's (:mod:`kpext.data.faces`); the 15- and 68-point face keypoint
sets (names, skeletons, OKS sigmas) are in :mod:`kpext.data.keypoint_sets`.

This module converts data, it draws nothing: the synthetic face renderer
(:mod:`kpext_synth.faces`) writes a Kaggle-format CSV and converts it here, exactly as a
user converts Kaggle's own file.

The Kaggle format
-----------------
Kaggle's "Facial Keypoints Detection" ``training.csv`` has one row per 96x96 grey
face crop: 30 coordinate columns ``<keypoint>_x``, ``<keypoint>_y`` for the 15
keypoints of :data:`~kpext.data.keypoint_sets.KAGGLE_FACE_KEYPOINT_NAMES` (in that
order), then an ``Image``
column holding the 96*96 grey values (0-255) as space-separated integers, row by
row. Missing coordinates are empty fields; in Kaggle's file about 70% of the rows
only label the four points of :data:`KAGGLE_CORE_KEYPOINTS`. Coordinates are pixel
coordinates in the 96x96 image, read here as COCO pixel-index coordinates (the
centre of pixel ``(i, j)`` is ``(i, j)``), the convention of COCO keypoints
(:mod:`kpext.geometry`).
"Left" is the subject's left, which appears on the image's right
(``left_eye_center_x > right_eye_center_x``).

:func:`read_kaggle_csv` validates a file and yields :class:`KaggleFaceRow` s;
:func:`convert_kaggle_csv` writes each row's image as a grey PNG and a COCO
keypoint JSON with one ``face`` annotation per image:

* ``keypoints``: ``x, y, 2`` for labelled points, ``0, 0, 0`` for missing ones.
  The kpext heads (and Detectron2's) weight the loss by ``v > 0``, so missing
  labels are masked out of training for free; COCO's OKS ignores them too.
* ``bbox``: Keypoint R-CNN needs a face box. With ``box="keypoints"`` (the
  default) it is the box of the labelled keypoints enlarged by ``box_margin``
  times its larger side on every side and clipped to the image; with
  ``box="image"`` it is the whole image, which suits Kaggle's own file best
  (its images are face crops, and rows that label only the 4 core points would
  otherwise get smaller boxes than fully labelled ones). Callers that know the
  true face box (the synthetic generator) pass ``face_boxes``. ``area`` is the
  box area: COCO's OKS uses it as the object scale.

Bad input
---------
Problems with the file as a whole (unreadable, no header, a wrong column set)
always raise :class:`~kpext.data.keypoint_metadata.KeypointDataError` naming the file.
A bad row (a malformed ``Image`` field, a non-numeric or non-finite coordinate,
an ``x`` without its ``y``, a point outside the image, a wrong number of fields)
raises naming the file, the row number (1-based, header excluded) and the line,
or with ``on_invalid="skip"`` is dropped and listed in the
:class:`ConversionReport`. Rows without any labelled point are never turned into
a face without keypoints silently: they are left out and listed in the report.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from kpext.data.faces import face15_category, face_annotation_path, face_image_dir
from kpext.data.invalid_records import ON_INVALID_CHOICES
from kpext.data.keypoint_metadata import KeypointDataError
from kpext.data.keypoint_sets import KAGGLE_FACE_KEYPOINT_NAMES
from kpext.geometry import coco_to_continuous

from .generation import write_json_atomically

__all__ = [
    "KAGGLE_CORE_KEYPOINTS",
    "KAGGLE_IMAGE_COLUMN",
    "KAGGLE_IMAGE_SIZE",
    "BOX_MODES",
    "CONVERTER_VERSION",
    "KaggleFaceRow",
    "ConversionReport",
    "kaggle_columns",
    "read_kaggle_csv",
    "face_box_from_keypoints",
    "convert_kaggle_csv",
    "face_annotation",
    "image_file_name",
]

CONVERTER_VERSION = "1.0"

# --------------------------------------------------------------------------- #
# The Kaggle format
# --------------------------------------------------------------------------- #

# The points labelled in (nearly) every row of Kaggle's training.csv.
KAGGLE_CORE_KEYPOINTS: Tuple[str, ...] = (
    "left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip",
)  # fmt: skip

KAGGLE_IMAGE_COLUMN = "Image"
KAGGLE_IMAGE_SIZE = 96


def kaggle_columns(names: Sequence[str] = KAGGLE_FACE_KEYPOINT_NAMES) -> List[str]:
    """The CSV header: ``<name>_x, <name>_y`` for each keypoint, then ``Image``."""
    return [f"{name}_{axis}" for name in names for axis in ("x", "y")] + [KAGGLE_IMAGE_COLUMN]


# --------------------------------------------------------------------------- #
# Reading and validating the CSV
# --------------------------------------------------------------------------- #

# A labelled point may lie this many pixels outside the image (a click on the
# border); farther out it is a wrong label (swapped columns, another image size).
OUTSIDE_IMAGE_TOLERANCE_PX = 1.0


@dataclass
class KaggleFaceRow:
    """One valid row of a Kaggle-format CSV.

    Attributes:
        row: 1-based data row number (the header is not counted).
        line: line of the file where the row starts (the header is line 1).
        image: (S, S) uint8 grey image.
        keypoints: (K, 2) float64 pixel-index coordinates, NaN where missing.
    """

    row: int
    line: int
    image: np.ndarray
    keypoints: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        """(K,) bool: which keypoints are labelled."""
        return ~np.isnan(self.keypoints[:, 0])


class _RowProblem(Exception):
    """A problem with one row: ``reason`` (short, stable) and ``detail``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _check_header(header: Sequence[str], csv_file: str, names: Sequence[str]) -> None:
    expected = kaggle_columns(names)
    if list(header) == ["ImageId", KAGGLE_IMAGE_COLUMN]:
        raise KeypointDataError(
            f"{csv_file}: has only the columns ImageId, Image: this looks like Kaggle's "
            "test.csv, which has no keypoint labels; convert training.csv"
        )
    duplicated = sorted({c for c in header if list(header).count(c) > 1})
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    if duplicated or missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected column(s) {', '.join(map(repr, unexpected))}")
        if duplicated:
            problems.append(f"duplicated column(s) {', '.join(duplicated)}")
        raise KeypointDataError(
            f"{csv_file}: wrong columns: {'; '.join(problems)}. A Kaggle facial-keypoints "
            f"CSV has the {2 * len(names)} columns <keypoint>_x, <keypoint>_y for "
            f"{', '.join(names)}, and '{KAGGLE_IMAGE_COLUMN}'",
            reason="wrong columns",
        )


def _parse_image(text: str, image_size: int) -> np.ndarray:
    """``Image`` field -> (S, S) uint8. Raises _RowProblem."""
    tokens = text.split()
    expected = image_size * image_size
    if len(tokens) != expected:
        raise _RowProblem(
            "malformed Image",
            f"Image has {len(tokens)} values, expected {expected} "
            f"({image_size}x{image_size} grey pixels, space-separated)",
        )
    try:
        pixels = np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(i for i, t in enumerate(tokens) if not t.lstrip("+-").isdigit())
        raise _RowProblem(
            "malformed Image", f"Image value #{bad + 1} is {tokens[bad]!r}, not an integer 0-255"
        ) from None
    out_of_range = np.flatnonzero((pixels < 0) | (pixels > 255))
    if out_of_range.size:
        bad = int(out_of_range[0])
        raise _RowProblem(
            "malformed Image", f"Image value #{bad + 1} is {pixels[bad]}, outside 0-255"
        )
    return pixels.astype(np.uint8).reshape(image_size, image_size)


def _parse_coordinate(text: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _RowProblem("non-numeric coordinate", f"{column} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise _RowProblem("non-finite coordinate", f"{column} is {text!r}")
    return value


def _parse_keypoints(
    record: Mapping[str, str], names: Sequence[str], image_size: int
) -> np.ndarray:
    """(K, 2) float64, NaN for missing points. Raises _RowProblem."""
    keypoints = np.full((len(names), 2), np.nan)
    low, high = -OUTSIDE_IMAGE_TOLERANCE_PX, image_size - 1 + OUTSIDE_IMAGE_TOLERANCE_PX
    for k, name in enumerate(names):
        x_text, y_text = record[f"{name}_x"].strip(), record[f"{name}_y"].strip()
        if not x_text and not y_text:
            continue  # missing label
        if not x_text or not y_text:
            given, empty = (f"{name}_x", f"{name}_y") if x_text else (f"{name}_y", f"{name}_x")
            raise _RowProblem("half-labelled point", f"{given} is given but {empty} is empty")
        x, y = _parse_coordinate(x_text, f"{name}_x"), _parse_coordinate(y_text, f"{name}_y")
        if not (low <= x <= high and low <= y <= high):
            raise _RowProblem(
                "keypoint outside image",
                f"{name} at ({x}, {y}) is outside the {image_size}x{image_size} image",
            )
        keypoints[k] = (x, y)
    return keypoints


def _open_csv(csv_file: str) -> io.TextIOBase:
    try:
        return open(csv_file, newline="", encoding="utf-8")
    except OSError as e:
        raise KeypointDataError(f"{csv_file}: cannot read CSV file ({e.strerror})") from e


def read_kaggle_csv(
    csv_file: str,
    *,
    image_size: int = KAGGLE_IMAGE_SIZE,
    names: Sequence[str] = KAGGLE_FACE_KEYPOINT_NAMES,
    on_invalid: str = "error",
    skipped: Optional[List[Tuple[int, str]]] = None,
) -> Iterator[KaggleFaceRow]:
    """Yield the valid rows of a Kaggle facial-keypoints CSV, in file order.

    Columns may come in any order. With ``on_invalid="skip"``, invalid rows are
    not yielded; ``(row, message)`` of each is appended to ``skipped``.

    Raises:
        KeypointDataError: the file is unreadable, empty or has a wrong column set;
            with ``on_invalid="error"``, the first invalid row (the message names
            the file, ``row N`` and the line).
        ValueError: ``on_invalid`` is not "error" or "skip".
    """
    if on_invalid not in ON_INVALID_CHOICES:
        raise ValueError(f"on_invalid must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}")
    # An Image field is ~4 bytes a pixel; csv refuses fields over its limit (128 KiB).
    csv.field_size_limit(max(csv.field_size_limit(), 8 * image_size * image_size + 1024))
    with _open_csv(csv_file) as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise KeypointDataError(f"{csv_file}: empty file, expected a header row") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise KeypointDataError(f"{csv_file}: cannot parse the header: {e}") from e
        header = [c.strip().lstrip("\ufeff") for c in header]
        _check_header(header, csv_file, names)
        row_number = 0
        while True:
            first_line = reader.line_num + 1  # a quoted field may span lines
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as e:
                raise KeypointDataError(
                    f"{csv_file}: row {row_number + 1} (line {first_line}): cannot parse CSV: {e}"
                ) from e
            if not fields:
                continue  # blank line
            row_number += 1
            try:
                yield _parse_row(fields, header, image_size, names, row_number, first_line)
            except _RowProblem as problem:
                message = f"{csv_file}: row {row_number} (line {first_line}): {problem.detail}"
                if on_invalid == "error":
                    raise KeypointDataError(message, reason=problem.reason) from None
                if skipped is not None:
                    skipped.append((row_number, message))


def _parse_row(
    fields: Sequence[str],
    header: Sequence[str],
    image_size: int,
    names: Sequence[str],
    row: int,
    line: int,
) -> KaggleFaceRow:
    if len(fields) != len(header):
        raise _RowProblem(
            "wrong number of fields", f"has {len(fields)} fields, the header has {len(header)}"
        )
    record = dict(zip(header, fields))
    keypoints = _parse_keypoints(record, names, image_size)
    image = _parse_image(record[KAGGLE_IMAGE_COLUMN], image_size)
    return KaggleFaceRow(row=row, line=line, image=image, keypoints=keypoints)


# --------------------------------------------------------------------------- #
# Conversion to COCO
# --------------------------------------------------------------------------- #

BOX_MODES: Tuple[str, ...] = ("keypoints", "image")


def face_box_from_keypoints(
    keypoints: np.ndarray, width: float, height: float, margin: float = 0.25
) -> List[float]:
    """COCO ``[x, y, w, h]`` box around the labelled keypoints.

    Args:
        keypoints: (K, 2) pixel-index coordinates, NaN for missing points; at
            least one point must be labelled.
        margin: the box of the points is enlarged by ``margin`` times its larger
            side on every side (a face extends well beyond its landmarks), then
            clipped to the ``width`` x ``height`` image.
    """
    points = coco_to_continuous(keypoints[~np.isnan(keypoints[:, 0])])
    if not len(points):
        raise ValueError("no labelled keypoint to put a box around")
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    pad = margin * max(x1 - x0, y1 - y0, 1.0)
    x0, y0 = max(0.0, x0 - pad), max(0.0, y0 - pad)
    x1, y1 = min(float(width), x1 + pad), min(float(height), y1 + pad)
    # points on the border with no margin could leave an empty box: keep at least 1 px
    x0, y0 = min(x0, width - 1.0), min(y0, height - 1.0)
    x1, y1 = max(x1, x0 + 1.0), max(y1, y0 + 1.0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _coco_keypoints(keypoints: np.ndarray, visibility: Optional[np.ndarray] = None) -> List[float]:
    """(K, 2) with NaN for missing -> flat COCO list: x, y, v (2, or ``visibility``)
    for labelled points, 0, 0, 0 for missing ones."""
    flat: List[float] = []
    for k, (x, y) in enumerate(keypoints):
        if np.isnan(x):
            flat.extend([0, 0, 0])
        else:
            v = 2 if visibility is None else int(visibility[k])
            flat.extend([round(float(x), 3), round(float(y), 3), v])
    return flat


def face_annotation(
    ann_id: int,
    image_id: int,
    keypoints: np.ndarray,
    box: Sequence[float],
    visibility: Optional[np.ndarray] = None,
) -> Dict[str, Any]:
    """One COCO face annotation (category 1) from (K, 2) keypoints, NaN = missing."""
    box = [round(float(b), 3) for b in box]
    labelled = ~np.isnan(keypoints[:, 0])
    if visibility is not None:
        labelled &= np.asarray(visibility) > 0
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": box,
        "area": round(box[2] * box[3], 3),
        "keypoints": _coco_keypoints(keypoints, visibility),
        "num_keypoints": int(labelled.sum()),
    }


def image_file_name(row: int) -> str:
    """Images are named after their CSV row, so an image leads back to its row."""
    return f"{row:06d}.png"


@dataclass
class ConversionReport:
    """What :func:`convert_kaggle_csv` did.

    Attributes:
        csv_file: the source CSV.
        json_files: ``{split: json path}`` written.
        num_rows: data rows read (valid or not).
        num_images: ``{split: number of images}``.
        num_labelled_points: labelled keypoints written, over all splits.
        skipped: ``(row, message)`` of invalid rows (only with ``on_invalid="skip"``).
        unlabelled_rows: rows without any labelled keypoint (left out).
    """

    csv_file: str
    json_files: Dict[str, str] = field(default_factory=dict)
    num_rows: int = 0
    num_images: Dict[str, int] = field(default_factory=dict)
    num_labelled_points: int = 0
    skipped: List[Tuple[int, str]] = field(default_factory=list)
    unlabelled_rows: List[int] = field(default_factory=list)

    def summary(self, max_quoted: int = 5) -> str:
        """A few lines for the command line."""
        images = ", ".join(f"{split}: {n}" for split, n in self.num_images.items())
        lines = [
            f"{self.csv_file}: {self.num_rows} rows -> {sum(self.num_images.values())} face "
            f"images ({images}), {self.num_labelled_points} labelled keypoints"
        ]
        for split, path in self.json_files.items():
            lines.append(f"  {split}: {path}")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} invalid row(s):")
            lines += [f"    {message}" for _, message in self.skipped[:max_quoted]]
            if len(self.skipped) > max_quoted:
                lines.append(f"    ... and {len(self.skipped) - max_quoted} more")
        if self.unlabelled_rows:
            quoted = ", ".join(map(str, self.unlabelled_rows[:max_quoted]))
            more = ", ..." if len(self.unlabelled_rows) > max_quoted else ""
            lines.append(
                f"  left out {len(self.unlabelled_rows)} row(s) without any labelled keypoint "
                f"(rows {quoted}{more})"
            )
        return "\n".join(lines)


def _check_convert_args(
    box: str, box_margin: float, val_fraction: float, split: str, val_split: str
) -> None:
    if box not in BOX_MODES:
        raise ValueError(f"box must be one of {BOX_MODES}, got {box!r}")
    if not 0.0 <= box_margin <= 2.0:
        raise ValueError(f"box_margin must be in [0, 2], got {box_margin!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    for name in (split, val_split):
        if not name or not all(c.isalnum() or c in "_-" for c in name):
            raise ValueError(f"split names may only use letters, digits, '_' and '-', got {name!r}")
    if val_fraction > 0 and split == val_split:
        raise ValueError(f"split and val_split must differ, both are {split!r}")


def _assign_splits(
    rows: Sequence[int], split: str, val_split: str, val_fraction: float, seed: int
) -> Dict[int, str]:
    """Row -> split; ``round(val_fraction * n)`` rows, drawn with ``seed``, go to ``val_split``."""
    num_val = int(round(val_fraction * len(rows)))
    order = np.random.default_rng(seed).permutation(len(rows))
    val_rows = {rows[i] for i in order[:num_val]}
    return {row: (val_split if row in val_rows else split) for row in rows}


def convert_kaggle_csv(
    csv_file: str,
    out_root: str,
    *,
    split: str = "train",
    val_fraction: float = 0.0,
    val_split: str = "val",
    seed: int = 0,
    image_size: int = KAGGLE_IMAGE_SIZE,
    box: str = "keypoints",
    box_margin: float = 0.25,
    face_boxes: Optional[Mapping[int, Sequence[float]]] = None,
    on_invalid: str = "error",
    info: Optional[Mapping[str, Any]] = None,
    show_progress: bool = False,
) -> ConversionReport:
    """Convert a Kaggle facial-keypoints CSV to COCO keypoint JSON plus PNG images.

    Writes ``<out_root>/images/<split>/<row>.png`` (grey, lossless) and
    ``<out_root>/annotations/faces15_<split>.json`` (atomically, after all images),
    one image and one ``face`` annotation per valid row; image and annotation ids
    are the CSV row numbers. With ``val_fraction > 0``, that share of the rows
    (a fixed random draw for ``seed``) goes to ``val_split`` instead.

    Args:
        box, box_margin: the face box, see the module docstring and
            :func:`face_box_from_keypoints`.
        face_boxes: known COCO ``[x, y, w, h]`` face boxes by row number; they
            take precedence over ``box``.
        info: extra entries for the JSON's ``info``.
        on_invalid: "error" (raise on the first invalid row) or "skip".

    Raises:
        KeypointDataError: see :func:`read_kaggle_csv`.
        ValueError: invalid arguments.
    """
    _check_convert_args(box, box_margin, val_fraction, split, val_split)
    report = ConversionReport(csv_file=csv_file)
    staged_dir = os.path.join(out_root, "images", ".staging")
    shutil.rmtree(staged_dir, ignore_errors=True)  # left by an interrupted run
    os.makedirs(staged_dir)
    try:
        entries = _convert_rows(csv_file, staged_dir, report, image_size, box, box_margin,
                                face_boxes, on_invalid, show_progress)  # fmt: skip
        split_of = _assign_splits(
            [image["id"] for image, _ in entries], split, val_split, val_fraction, seed
        )
        splits = [split] + ([val_split] if val_fraction > 0 else [])
        chosen = {name: [e for e in entries if split_of[e[0]["id"]] == name] for name in splits}
        for name in splits:
            _move_staged_images(
                staged_dir,
                face_image_dir(out_root, name),
                [im["file_name"] for im, _ in chosen[name]],
            )
    finally:
        shutil.rmtree(staged_dir, ignore_errors=True)

    for name in splits:
        data = {
            "info": {
                "description": "faces converted from a Kaggle facial-keypoints CSV",
                "converter": "kpext.data.faces",
                "converter_version": CONVERTER_VERSION,
                "source_csv": os.path.basename(csv_file),
                "split": name,
                "box": "given" if face_boxes is not None else box,
                "box_margin": box_margin,
                **dict(info or {}),
            },
            "licenses": [],
            "images": [image for image, _ in chosen[name]],
            "annotations": [ann for _, ann in chosen[name]],
            "categories": [face15_category()],
        }
        path = face_annotation_path(out_root, len(KAGGLE_FACE_KEYPOINT_NAMES), name)
        write_json_atomically(path, data)
        report.json_files[name] = path
        report.num_images[name] = len(chosen[name])
    return report


def _convert_rows(
    csv_file: str,
    staged_dir: str,
    report: ConversionReport,
    image_size: int,
    box: str,
    box_margin: float,
    face_boxes: Optional[Mapping[int, Sequence[float]]],
    on_invalid: str,
    show_progress: bool,
) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Write each valid row's PNG into ``staged_dir``; (image entry, annotation) per
    labelled row. Fills the row counts of ``report``."""
    entries = []
    rows = read_kaggle_csv(
        csv_file, image_size=image_size, on_invalid=on_invalid, skipped=report.skipped
    )
    desc = f"faces {os.path.basename(csv_file)}"
    for face in tqdm(rows, desc=desc, unit="row", disable=not show_progress):
        report.num_rows += 1
        if not face.labelled.any():
            report.unlabelled_rows.append(face.row)
            continue
        if face_boxes is not None and face.row in face_boxes:
            face_box = [float(b) for b in face_boxes[face.row]]
        elif box == "image":
            face_box = [0.0, 0.0, float(image_size), float(image_size)]
        else:
            face_box = face_box_from_keypoints(face.keypoints, image_size, image_size, box_margin)
        file_name = image_file_name(face.row)
        path = os.path.join(staged_dir, file_name)
        if not cv2.imwrite(path, face.image):
            raise OSError(f"could not write {path}")
        image = {"id": face.row, "file_name": file_name, "width": image_size, "height": image_size}
        entries.append((image, face_annotation(face.row, face.row, face.keypoints, face_box)))
        report.num_labelled_points += int(face.labelled.sum())
    report.num_rows += len(report.skipped)
    return entries


def _move_staged_images(staged_dir: str, image_dir: str, file_names: Sequence[str]) -> None:
    """Move freshly written images into a split's folder, removing the PNGs of an
    earlier conversion first (they may belong to rows now in another split)."""
    os.makedirs(image_dir, exist_ok=True)
    for stale in os.listdir(image_dir):
        if stale.endswith(".png") and stale[:-4].isdigit():
            os.remove(os.path.join(image_dir, stale))
    for name in file_names:
        os.replace(os.path.join(staged_dir, name), os.path.join(image_dir, name))
