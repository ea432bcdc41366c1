"""Detectron2 keypoint metadata from keypoint names: sides, flip pairs, skeleton
colours and OKS sigmas.

:func:`keypoint_metadata_from_category` turns one COCO keypoint category (names
and 1-based skeleton pairs) into the metadata Detectron2 and kpext read:
``keypoint_names``, ``keypoint_flip_map`` (left/right pairs found from the names,
see :mod:`kpext.data.keypoint_names`), ``keypoint_connection_rules`` (skeleton edges
coloured by side) and ``keypoint_oks_sigmas``.

OKS sigmas have one lookup, used by training (the OKS loss), evaluation,
tracking and the demo: :func:`oks_sigmas_for_names` (COCO's sigma for COCO's
keypoint names, compared after
:func:`~kpext.data.keypoint_names.normalized_keypoint_name`, so ``leftEye``,
``LEFT_EYE`` and ``l_eye`` find ``left_eye``'s;
:data:`~kpext.data.keypoint_sets.DEFAULT_OKS_SIGMA` for the others), with
:func:`oks_sigmas_for_count` for keypoints known only by their count and
:func:`dataset_oks_sigmas` for a registered dataset. COCO's sigmas are relative to
a *person's* area, so a category gets them only when it is a person (its name or
supercategory is "person") or its keypoints are COCO's 17
(:func:`uses_coco_sigmas`); any other category gets the default for every
keypoint, with one warning, unless ``oks_sigmas`` is given ("coco" asks for the
name lookup).

Flip map: the left/right pairs found from the names are logged once per dataset;
a set with more than one keypoint and no pair gets a warning (training with
horizontal flip refuses it, see :func:`kpext.engine.check_horizontal_flip`), and
``flip_map=`` overrides the names (``[]`` declares a symmetric set).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from detectron2.data import MetadataCatalog

from .keypoint_names import (
    is_side_free,
    keypoint_side,
    normalized_keypoint_name,
    pair_left_right_names,
    unpaired_side_names,
)
from .keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_OKS_SIGMAS, DEFAULT_OKS_SIGMA

# What register_keypoint_coco(..., oks_sigmas=...) accepts besides a list: COCO's sigma
# for each keypoint named as one of COCO's (the default for the others).
COCO_SIGMAS_BY_NAME = "coco"

FlipMap = List[Tuple[str, str]]

__all__ = [
    "KeypointDataError",
    "LEFT_LIMB_COLOR",
    "RIGHT_LIMB_COLOR",
    "CENTER_LIMB_COLOR",
    "uses_coco_sigmas",
    "normalize_skeleton",
    "keypoint_names_of",
    "oks_sigmas_for_names",
    "oks_sigmas_for_count",
    "dataset_oks_sigmas",
    "model_oks_sigmas",
    "keypoint_metadata_from_category",
    "keypoint_dataset_metadata",
    "normalized_category",
    "COCO_SIGMAS_BY_NAME",
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


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def normalize_skeleton(
    skeleton: Any, num_keypoints: int
) -> Tuple[List[List[int]], bool, List[Any]]:
    """A category's skeleton as 1-based pairs, as far as it can be read.

    Returns (pairs, zero_based, dropped): ``zero_based`` is True when the indices were
    taken as 0-based (some index is 0 and none exceeds K - 1) and shifted by one;
    ``dropped`` holds the entries that are not pairs of indices in range. The skeleton
    only draws pictures, so it never makes a dataset unusable.
    """
    if skeleton is None:
        return [], False, []
    if not isinstance(skeleton, list):
        return [], False, [skeleton]
    pairs = [p for p in skeleton if isinstance(p, (list, tuple)) and len(p) == 2]
    pairs = [list(p) for p in pairs if all(_is_index(i) for i in p)]
    indices = [i for p in pairs for i in p]
    zero_based = bool(indices) and min(indices) == 0 and max(indices) <= num_keypoints - 1
    offset = 1 if zero_based else 0
    kept, dropped = [], []
    for entry in skeleton:
        pair = list(entry) if isinstance(entry, (list, tuple)) and len(entry) == 2 else None
        if pair is None or not all(_is_index(i) for i in pair):
            dropped.append(entry)
            continue
        shifted = [i + offset for i in pair]
        if all(1 <= i <= num_keypoints for i in shifted):
            kept.append(shifted)
        else:
            dropped.append(entry)
    return kept, zero_based, dropped


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


_COCO_SIGMA_BY_NORMALIZED_NAME: Dict[str, float] = {
    normalized_keypoint_name(name): sigma for name, sigma in COCO_PERSON_OKS_SIGMAS.items()
}
_COCO_NORMALIZED_NAMES = frozenset(_COCO_SIGMA_BY_NORMALIZED_NAME)


def _coco_sigma(name: str) -> Optional[float]:
    return _COCO_SIGMA_BY_NORMALIZED_NAME.get(normalized_keypoint_name(name))


def _checked_sigmas(names: Sequence[str], oks_sigmas: Sequence[float]) -> List[float]:
    sigmas = list(oks_sigmas)
    if len(sigmas) != len(names):
        raise KeypointDataError(
            f"oks_sigmas has {len(sigmas)} values, expected one per keypoint ({len(names)})"
        )
    if not all(is_number(s) and math.isfinite(s) and s > 0 for s in sigmas):
        raise KeypointDataError(f"oks_sigmas must be finite positive numbers, got {sigmas}")
    return [float(s) for s in sigmas]


def oks_sigmas_for_names(
    names: Sequence[str], oks_sigmas: Optional[Sequence[float]] = None
) -> List[float]:
    """Per-keypoint OKS sigmas: ``oks_sigmas`` checked, else COCO's for COCO's names (compared
    after :func:`normalized_keypoint_name`) and ``DEFAULT_OKS_SIGMA`` for the others."""
    if oks_sigmas is not None:
        return _checked_sigmas(names, oks_sigmas)
    return _coco_or_default_sigmas(names, logging.INFO, "")


def _coco_or_default_sigmas(names: Sequence[str], level: int, source: str) -> List[float]:
    """COCO's sigma for each COCO name, ``DEFAULT_OKS_SIGMA`` for the others (logged at
    ``level``, with ``source`` in front when given)."""
    unknown = [n for n in names if _coco_sigma(n) is None]
    if unknown:
        logger.log(
            level,
            "%sOKS sigmas: no COCO sigma for keypoint(s) %s; using the default %s for them "
            "(pass register_keypoint_coco(..., oks_sigmas=[...]) to set them).",
            f"{source}: " if source else "",
            _summarize_names(unknown),
            DEFAULT_OKS_SIGMA,
        )
    return [float(_coco_sigma(n) or DEFAULT_OKS_SIGMA) for n in names]


def uses_coco_sigmas(categories: Sequence[Dict[str, Any]], names: Sequence[str]) -> bool:
    """Whether COCO's person sigmas suit a keypoint set: a category named (or with the
    supercategory) "person", or keypoints that are exactly COCO's 17 under any naming style.
    COCO's sigmas are fractions of a person's size: a face's or a hand's "nose" or "wrist"
    is far smaller relative to its box."""
    is_person = any(
        str(c.get(key, "")).strip().lower() == "person"
        for c in categories
        for key in ("name", "supercategory")
    )
    normalized = {normalized_keypoint_name(n) for n in names}
    return is_person or (len(names) == len(normalized) and normalized == _COCO_NORMALIZED_NAMES)


def _dataset_sigmas(
    categories: Sequence[Dict[str, Any]],
    names: Sequence[str],
    oks_sigmas: Union[None, str, Sequence[float]],
    source: str,
) -> List[float]:
    """The OKS sigmas of a dataset, with one warning when defaults stand in (see the module
    docstring for the choice)."""
    if isinstance(oks_sigmas, str):
        if oks_sigmas != COCO_SIGMAS_BY_NAME:
            raise KeypointDataError(
                f"oks_sigmas must be a list of numbers or {COCO_SIGMAS_BY_NAME!r}, "
                f"got {oks_sigmas!r}"
            )
    elif oks_sigmas is not None:
        return _checked_sigmas(names, oks_sigmas)
    elif not uses_coco_sigmas(categories, names):
        logger.warning(
            "%s: OKS sigmas: %s is not a person with COCO's keypoints, so COCO's person sigmas "
            "do not apply; using the default %s for all %d keypoints (pass "
            "register_keypoint_coco(..., oks_sigmas=[...]) to set them, or oks_sigmas='coco' "
            "for COCO's sigmas where the names match).",
            source,
            ", ".join(describe_category(c) for c in categories[:3])
            + (", ..." if len(categories) > 3 else ""),
            DEFAULT_OKS_SIGMA,
            len(names),
        )
        return [float(DEFAULT_OKS_SIGMA)] * len(names)
    return _coco_or_default_sigmas(names, logging.WARNING, source)


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


def model_oks_sigmas(cfg) -> List[float]:
    """The OKS sigmas of a model's keypoints, for tools that run it (pose NMS, tracking,
    repetition counting): what the evaluator uses, :func:`dataset_oks_sigmas` of the first test
    (else training) set with ``TEST.KEYPOINT_OKS_SIGMAS``, when they fit
    ``MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS``; else :func:`oks_sigmas_for_count`. One rule,
    so that two tools track the same model alike, and as it is evaluated."""
    num_keypoints = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
    cfg_sigmas = list(cfg.TEST.KEYPOINT_OKS_SIGMAS)
    datasets = (*cfg.DATASETS.TEST, *cfg.DATASETS.TRAIN)
    sigmas = cfg_sigmas
    if datasets:
        try:
            sigmas = dataset_oks_sigmas(datasets[0], cfg_sigmas)
        except ValueError:  # the dataset has another keypoint count than these sigmas
            sigmas = []
    if len(sigmas) == num_keypoints:
        return [float(v) for v in sigmas]
    return oks_sigmas_for_count(num_keypoints)


# --------------------------------------------------------------------------- #
# Flip map
# --------------------------------------------------------------------------- #


def _checked_flip_map(flip_map: Sequence[Sequence[str]], names: Sequence[str]) -> FlipMap:
    """A flip map given by the user: pairs of two different keypoint names, each name in at
    most one pair."""
    pairs, used = [], set()
    for pair in flip_map:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise KeypointDataError(f"flip_map entry {pair!r} is not a (left, right) name pair")
        unknown = [n for n in pair if n not in names]
        if unknown:
            raise KeypointDataError(
                f"flip_map entry {tuple(pair)} names {unknown}, not keypoints of this set "
                f"({_summarize_names(names)})"
            )
        if pair[0] == pair[1] or used & set(pair):
            raise KeypointDataError(
                f"flip_map entry {tuple(pair)}: a keypoint may appear in only one pair, once"
            )
        used.update(pair)
        pairs.append((pair[0], pair[1]))
    return pairs


def _derived_flip_map(names: Sequence[str], source: str) -> FlipMap:
    """Pairs from the names, logged: the pairs made (INFO), no pair at all or names left
    unpaired (WARNING)."""
    flip_map = pair_left_right_names(names)
    if flip_map:
        logger.info(
            "%s: horizontal flip swaps %d left/right keypoint pair(s): %s",
            source,
            len(flip_map),
            ", ".join(f"{a}<->{b}" for a, b in flip_map),
        )
    elif len(names) > 1 and is_side_free(names):
        logger.warning(
            "%s: no keypoint name carries a side (%s): a horizontal flip keeps every label "
            "(identity flip map), as for a hand's wrist, thumb1..4, .... If some points are "
            "sided, pass register_keypoint_coco(..., flip_map=[(left, right), ...]); "
            "flip_map=[] declares the set symmetric and silences this warning.",
            source,
            _summarize_names(names, limit=5),
        )
    elif len(names) > 1:
        logger.warning(
            "%s: no left/right keypoint pairs found among the names (%s): training with "
            "horizontal flip (INPUT.RANDOM_FLIP horizontal) will refuse this set. Pass "
            "register_keypoint_coco(..., flip_map=[(left, right), ...]), or flip_map=[] "
            "for a symmetric set, or set INPUT.RANDOM_FLIP none.",
            source,
            _summarize_names(names, limit=5),
        )
    unpaired = unpaired_side_names(names, flip_map)
    if unpaired:
        logger.warning(
            "%s: keypoint(s) %s name a side but have no unique partner of the other side; "
            "they are not swapped by horizontal flip (pass flip_map= to pair them).",
            source,
            _summarize_names(unpaired),
        )
    return flip_map


# --------------------------------------------------------------------------- #
# Metadata of a category / a dataset
# --------------------------------------------------------------------------- #


def keypoint_metadata_from_category(
    category: Dict[str, Any],
    oks_sigmas: Union[None, str, Sequence[float]] = None,
    *,
    flip_map: Optional[Sequence[Sequence[str]]] = None,
    source: str = "<category>",
) -> Dict[str, Any]:
    """Detectron2 keypoint metadata for one COCO keypoint category.

    Args:
        category: a COCO category dict with ``keypoints`` (names) and optionally
            ``skeleton`` (1-based index pairs).
        oks_sigmas: one OKS sigma per keypoint, or "coco" (COCO's sigma for names COCO
            defines, the default for others); by default COCO's for a person category
            (see :func:`uses_coco_sigmas`), ``DEFAULT_OKS_SIGMA`` for every keypoint otherwise.
        flip_map: (left, right) name pairs; by default derived from the names
            (:func:`pair_left_right_names`). ``[]`` declares a symmetric set.
        source: what log messages name (the JSON file).

    Returns:
        dict with ``keypoint_names``, ``keypoint_flip_map`` ((left, right) name
        tuples), ``keypoint_flip_map_declared`` (True when ``flip_map`` was given),
        ``keypoint_connection_rules`` ((name_a, name_b, (r, g, b)) per
        skeleton edge, coloured by side), ``keypoint_oks_sigmas`` (aligned with
        the names) and ``skeleton`` (the 1-based pairs as given).

    Raises:
        KeypointDataError: invalid names, skeleton, flip map or sigmas.
    """
    return _keypoint_metadata([category], oks_sigmas, flip_map, source)


def _keypoint_metadata(
    categories: Sequence[Dict[str, Any]],
    oks_sigmas: Union[None, str, Sequence[float]],
    flip_map: Optional[Sequence[Sequence[str]]],
    source: str,
) -> Dict[str, Any]:
    category = categories[0]
    names = keypoint_names_of(category)
    skeleton = _skeleton_of(category, len(names))
    if flip_map is None:
        pairs = _derived_flip_map(names, source)
    else:
        pairs = _checked_flip_map(flip_map, names)
    return {
        "keypoint_names": names,
        "keypoint_flip_map": pairs,
        "keypoint_flip_map_declared": flip_map is not None,
        "keypoint_connection_rules": _connection_rules(names, skeleton),
        "keypoint_oks_sigmas": _dataset_sigmas(categories, names, oks_sigmas, source),
        "skeleton": skeleton,
    }


def normalized_category(category: Dict[str, Any], source: str = "<category>") -> Dict[str, Any]:
    """A copy of ``category`` whose skeleton is 1-based and in range, with a warning for each
    change (0-based indices converted, entries dropped). Names are checked as they are."""
    names = keypoint_names_of(category)
    skeleton, zero_based, dropped = normalize_skeleton(category.get("skeleton"), len(names))
    where = f"{source}: {describe_category(category)}"
    if zero_based:
        logger.warning(
            "%s: skeleton uses 0-based keypoint indices (0 to %d); converted to COCO's 1-based "
            "indices.",
            where,
            len(names) - 1,
        )
    if dropped:
        logger.warning(
            "%s: dropped %d skeleton entr(y/ies) that are not pairs of keypoint indices in "
            "[1, %d]: %s (the skeleton only draws pictures; the data is used as is).",
            where,
            len(dropped),
            len(names),
            _summarize_names([repr(d) for d in dropped], limit=5),
        )
    return {**category, "skeleton": skeleton}


def keypoint_dataset_metadata(
    categories: Sequence[Dict[str, Any]],
    oks_sigmas: Union[None, str, Sequence[float]] = None,
    *,
    source: str = "<categories>",
    flip_map: Optional[Sequence[Sequence[str]]] = None,
) -> Dict[str, Any]:
    """Metadata of a keypoint dataset made of ``categories`` (which share one
    keypoint list): the keypoint fields of :func:`keypoint_metadata_from_category`
    (the skeleton first normalised by :func:`normalized_category`) plus ``thing_classes``
    and ``thing_dataset_id_to_contiguous_id``, categories ordered by id. ``source`` (the
    JSON file) prefixes error and log messages."""
    categories = sorted(categories, key=lambda c: c["id"])
    try:
        first = normalized_category(categories[0], source)
        metadata = _keypoint_metadata([first, *categories[1:]], oks_sigmas, flip_map, source)
    except KeypointDataError as e:
        raise KeypointDataError(f"{source}: {describe_category(categories[0])}: {e}") from e
    metadata["thing_classes"] = [c["name"] for c in categories]
    metadata["thing_dataset_id_to_contiguous_id"] = {c["id"]: i for i, c in enumerate(categories)}
    return metadata
