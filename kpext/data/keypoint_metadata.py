"""Detectron2 keypoint metadata from keypoint names: sides, flip pairs, skeleton
colours and OKS sigmas.

:func:`keypoint_metadata_from_category` turns one COCO keypoint category (names
and 1-based skeleton pairs) into the metadata Detectron2 and kpext read:
``keypoint_names``, ``keypoint_flip_map`` (left/right pairs found from the names,
see :func:`keypoint_side`), ``keypoint_connection_rules`` (skeleton edges coloured
by side) and ``keypoint_oks_sigmas``.

OKS sigmas have one lookup, used by training (the OKS loss), evaluation,
tracking and the demo: :func:`oks_sigmas_for_names` (COCO's sigma for COCO's
keypoint names, :data:`~kpext.data.keypoint_sets.DEFAULT_OKS_SIGMA` for the
others), with :func:`oks_sigmas_for_count` for keypoints known only by their
count and :func:`dataset_oks_sigmas` for a registered dataset.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from detectron2.data import MetadataCatalog

from .keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_OKS_SIGMAS, DEFAULT_OKS_SIGMA

__all__ = [
    "KeypointDataError",
    "LEFT_LIMB_COLOR",
    "RIGHT_LIMB_COLOR",
    "CENTER_LIMB_COLOR",
    "keypoint_side",
    "pair_left_right_names",
    "keypoint_names_of",
    "oks_sigmas_for_names",
    "oks_sigmas_for_count",
    "dataset_oks_sigmas",
    "keypoint_metadata_from_category",
    "keypoint_dataset_metadata",
    "describe_category",
    "is_number",
]

logger = logging.getLogger(__name__)

# Skeleton colours for Detectron2's Visualizer, by the side of the two endpoints.
LEFT_LIMB_COLOR: Tuple[int, int, int] = (255, 140, 0)
RIGHT_LIMB_COLOR: Tuple[int, int, int] = (0, 120, 255)
CENTER_LIMB_COLOR: Tuple[int, int, int] = (40, 200, 40)


class KeypointDataError(ValueError):
    """Keypoint data is invalid: a COCO keypoint file, one record in it, or a
    category's keypoint names, skeleton or OKS sigmas.

    ``reason`` is a short stable key of the problem (e.g. ``"wrong keypoints
    length"``) when the error concerns a single record, else None.
    """

    def __init__(self, message: str, *, reason: Optional[str] = None):
        super().__init__(message)
        self.reason = reason


def is_number(value: Any) -> bool:
    """An int or float parsed from JSON (``true``/``false`` parse as bool, an int
    subclass, and are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe_category(category: Dict[str, Any]) -> str:
    """``category 'person' (id 1)``: how error messages name a category."""
    return f"category {category.get('name')!r} (id {category.get('id')})"


# --------------------------------------------------------------------------- #
# Sides and left/right pairs
# --------------------------------------------------------------------------- #

# Words of a name: "leftEye" -> left, Eye; "LEFT_EYE" -> LEFT, EYE; "l_eye" -> l, eye.
_NAME_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SIDE_WORDS = {"left": "left", "l": "left", "right": "right", "r": "right"}
_SIDE_PLACEHOLDER = "<side>"


def _split_glued_side(token: str) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """``"lefteye"`` -> ("left", ("<side>", "eye")); only the full words left/right,
    because a glued single letter ("lip", "rib") is far too ambiguous."""
    for word in ("left", "right"):
        if token.startswith(word) and len(token) > len(word):
            return word, (_SIDE_PLACEHOLDER, token[len(word) :])
        if token.endswith(word) and len(token) > len(word):
            return word, (token[: -len(word)], _SIDE_PLACEHOLDER)
    return None


def keypoint_side(name: str) -> Tuple[Optional[str], Tuple[str, ...]]:
    """Return (side, key) of a keypoint name, case-insensitively.

    ``side`` is "left", "right" or None; ``key`` is the name's lower-cased words
    with the side word replaced by a placeholder, so that the left and right
    versions of one point share a key: ``left_eye``, ``l_eye``, ``leftEye`` and
    ``LEFT_EYE`` all give ("left", ("<side>", "eye")), ``eye_right`` gives
    ("right", ("eye", "<side>")). Names with no side word, or with more than one,
    have side None.
    """
    tokens = [t.lower() for t in _NAME_TOKEN_RE.findall(name)]
    side_positions = [i for i, t in enumerate(tokens) if t in _SIDE_WORDS]
    if len(side_positions) == 1:
        i = side_positions[0]
        key = tuple(tokens[:i]) + (_SIDE_PLACEHOLDER,) + tuple(tokens[i + 1 :])
        return _SIDE_WORDS[tokens[i]], key
    if not side_positions:
        glued = [(i, _split_glued_side(t)) for i, t in enumerate(tokens)]
        glued = [(i, split) for i, split in glued if split is not None]
        if len(glued) == 1:
            i, (side, parts) = glued[0]
            return side, tuple(tokens[:i]) + parts + tuple(tokens[i + 1 :])
    return None, tuple(tokens)


def pair_left_right_names(names: Sequence[str]) -> List[Tuple[str, str]]:
    """Pair left/right keypoint names into Detectron2's ``keypoint_flip_map``.

    Returns (left_name, right_name) tuples, ordered by the first member's position
    in ``names``. A name is paired only when exactly one left and one right name
    share its key (see :func:`keypoint_side`), so ambiguous sets stay unpaired
    rather than being flipped wrongly.
    """
    by_key: Dict[Tuple[str, ...], Dict[str, List[int]]] = {}
    for index, name in enumerate(names):
        side, key = keypoint_side(name)
        if side is not None:
            by_key.setdefault(key, {"left": [], "right": []})[side].append(index)

    pairs = []
    for sides in by_key.values():
        if len(sides["left"]) == 1 and len(sides["right"]) == 1:
            left, right = sides["left"][0], sides["right"][0]
            pairs.append((min(left, right), names[left], names[right]))
    return [(left, right) for _, left, right in sorted(pairs)]


# --------------------------------------------------------------------------- #
# Names, skeleton and its colours
# --------------------------------------------------------------------------- #


def _limb_color(side_a: Optional[str], side_b: Optional[str]) -> Tuple[int, int, int]:
    if side_a == side_b == "left":
        return LEFT_LIMB_COLOR
    if side_a == side_b == "right":
        return RIGHT_LIMB_COLOR
    return CENTER_LIMB_COLOR


def keypoint_names_of(category: Dict[str, Any]) -> List[str]:
    """The checked ``keypoints`` list of a COCO category: non-empty, unique,
    non-empty strings. Raises :class:`KeypointDataError` otherwise."""
    names = category.get("keypoints")
    if not isinstance(names, list) or not names:
        raise KeypointDataError("category has no non-empty 'keypoints' list")
    if not all(isinstance(n, str) and n for n in names):
        raise KeypointDataError("category 'keypoints' must be a list of non-empty strings")
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        # Detectron2 maps names to indices with list.index(), so names must be unique.
        raise KeypointDataError(f"duplicate keypoint names {duplicates}")
    return list(names)


def _skeleton_of(category: Dict[str, Any], num_keypoints: int) -> List[List[int]]:
    skeleton = category.get("skeleton") or []
    if not isinstance(skeleton, list):
        raise KeypointDataError("category 'skeleton' must be a list of [a, b] index pairs")
    for pair in skeleton:
        valid = (
            isinstance(pair, (list, tuple))
            and len(pair) == 2
            and all(isinstance(i, int) and not isinstance(i, bool) for i in pair)
            and all(1 <= i <= num_keypoints for i in pair)
        )
        if not valid:
            raise KeypointDataError(
                f"skeleton entry {pair!r} is not a pair of 1-based keypoint indices "
                f"in [1, {num_keypoints}]"
            )
    return [list(pair) for pair in skeleton]


def _connection_rules(
    names: Sequence[str], skeleton: Sequence[Sequence[int]]
) -> List[Tuple[str, str, Tuple[int, int, int]]]:
    rules = []
    for a, b in skeleton:
        name_a, name_b = names[a - 1], names[b - 1]
        color = _limb_color(keypoint_side(name_a)[0], keypoint_side(name_b)[0])
        rules.append((name_a, name_b, color))
    return rules


def _summarize_names(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in total)"


# --------------------------------------------------------------------------- #
# OKS sigmas
# --------------------------------------------------------------------------- #


def oks_sigmas_for_names(
    names: Sequence[str], oks_sigmas: Optional[Sequence[float]] = None
) -> List[float]:
    """Per-keypoint OKS sigmas: ``oks_sigmas`` checked, else COCO's for COCO's names
    and ``DEFAULT_OKS_SIGMA`` for the others."""
    if oks_sigmas is not None:
        sigmas = list(oks_sigmas)
        if len(sigmas) != len(names):
            raise KeypointDataError(
                f"oks_sigmas has {len(sigmas)} values, expected one per keypoint ({len(names)})"
            )
        if not all(is_number(s) and math.isfinite(s) and s > 0 for s in sigmas):
            raise KeypointDataError(f"oks_sigmas must be finite positive numbers, got {sigmas}")
        return [float(s) for s in sigmas]

    unknown = [n for n in names if n not in COCO_PERSON_OKS_SIGMAS]
    if unknown:
        logger.info(
            "No COCO OKS sigma for keypoint(s) %s; using the default %s for them "
            "(pass oks_sigmas= to set them).",
            _summarize_names(unknown),
            DEFAULT_OKS_SIGMA,
        )
    return [float(COCO_PERSON_OKS_SIGMAS.get(n, DEFAULT_OKS_SIGMA)) for n in names]


def oks_sigmas_for_count(num_keypoints: int) -> List[float]:
    """OKS sigmas of keypoints known only by their count (a model's output without
    dataset metadata): taken as COCO's person keypoints when there are 17, so
    COCO's sigmas, else ``DEFAULT_OKS_SIGMA`` for each."""
    if num_keypoints == len(COCO_PERSON_KEYPOINT_NAMES):
        return oks_sigmas_for_names(COCO_PERSON_KEYPOINT_NAMES)
    return [float(DEFAULT_OKS_SIGMA)] * num_keypoints


def dataset_oks_sigmas(dataset_name: str, cfg_sigmas: Sequence[float] = ()) -> List[float]:
    """OKS sigmas for a registered dataset: ``cfg_sigmas`` (``TEST.KEYPOINT_OKS_SIGMAS``) if
    given, else its ``keypoint_oks_sigmas`` metadata, else derived from its ``keypoint_names``
    (Detectron2's built-in COCO sets have names only). Empty when nothing is known.

    Raises ValueError when the count differs from the dataset's keypoint count.
    """
    meta = MetadataCatalog.get(dataset_name)
    names = meta.get("keypoint_names", None)
    sigmas = list(cfg_sigmas) or list(meta.get("keypoint_oks_sigmas", []))
    if not sigmas and names:
        sigmas = oks_sigmas_for_names(names)
    if names is not None and sigmas and len(sigmas) != len(names):
        raise ValueError(
            f"{dataset_name}: {len(sigmas)} OKS sigmas for {len(names)} keypoints "
            "(check TEST.KEYPOINT_OKS_SIGMAS)"
        )
    return [float(s) for s in sigmas]


# --------------------------------------------------------------------------- #
# Metadata of a category / a dataset
# --------------------------------------------------------------------------- #


def keypoint_metadata_from_category(
    category: Dict[str, Any], oks_sigmas: Optional[Sequence[float]] = None
) -> Dict[str, Any]:
    """Detectron2 keypoint metadata for one COCO keypoint category.

    Args:
        category: a COCO category dict with ``keypoints`` (names) and optionally
            ``skeleton`` (1-based index pairs).
        oks_sigmas: one OKS sigma per keypoint; by default COCO's sigma for names
            COCO defines and ``DEFAULT_OKS_SIGMA`` for the others.

    Returns:
        dict with ``keypoint_names``, ``keypoint_flip_map`` ((left, right) name
        tuples), ``keypoint_connection_rules`` ((name_a, name_b, (r, g, b)) per
        skeleton edge, coloured by side), ``keypoint_oks_sigmas`` (aligned with
        the names) and ``skeleton`` (the 1-based pairs as given).

    Raises:
        KeypointDataError: invalid names, skeleton or sigmas.
    """
    names = keypoint_names_of(category)
    skeleton = _skeleton_of(category, len(names))
    flip_map = pair_left_right_names(names)
    if not flip_map and len(names) > 1:
        logger.info(
            "No left/right pairs found among keypoint names (%s): horizontal flips will "
            "not swap any keypoints.",
            _summarize_names(names, limit=5),
        )
    return {
        "keypoint_names": names,
        "keypoint_flip_map": flip_map,
        "keypoint_connection_rules": _connection_rules(names, skeleton),
        "keypoint_oks_sigmas": oks_sigmas_for_names(names, oks_sigmas),
        "skeleton": skeleton,
    }


def keypoint_dataset_metadata(
    categories: Sequence[Dict[str, Any]],
    oks_sigmas: Optional[Sequence[float]] = None,
    *,
    source: str = "<categories>",
) -> Dict[str, Any]:
    """Metadata of a keypoint dataset made of ``categories`` (which share one
    keypoint list): the keypoint fields of :func:`keypoint_metadata_from_category`
    plus ``thing_classes`` and ``thing_dataset_id_to_contiguous_id``, categories
    ordered by id. ``source`` (the JSON file) prefixes error messages."""
    categories = sorted(categories, key=lambda c: c["id"])
    try:
        metadata = keypoint_metadata_from_category(categories[0], oks_sigmas)
    except KeypointDataError as e:
        raise KeypointDataError(f"{source}: {describe_category(categories[0])}: {e}") from e
    metadata["thing_classes"] = [c["name"] for c in categories]
    metadata["thing_dataset_id_to_contiguous_id"] = {c["id"]: i for i, c in enumerate(categories)}
    return metadata
