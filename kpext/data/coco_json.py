"""Reading a COCO keypoint JSON: the file parsed once per version (registration and the
lazy load share the parse), its top-level structure checked, and the keypoint
categories that form the dataset chosen. Problems here concern the whole file and always
raise :class:`~kpext.data.keypoint_metadata.KeypointDataError`."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

from .keypoint_metadata import KeypointDataError, describe_category, keypoint_names_of

__all__ = ["read_coco_json", "select_keypoint_categories", "keypoint_names_or_error"]

_REQUIRED_TOP_LEVEL_KEYS = ("images", "annotations", "categories")

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


def read_coco_json(json_file: str) -> Dict[str, Any]:
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


def select_keypoint_categories(
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


def keypoint_names_or_error(category: Dict[str, Any], json_file: str) -> List[str]:
    try:
        return keypoint_names_of(category)
    except KeypointDataError as e:
        raise KeypointDataError(f"{json_file}: {describe_category(category)}: {e}") from e
