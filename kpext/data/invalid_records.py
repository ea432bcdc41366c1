"""The bad-input policy of the COCO loader (``on_invalid``): raise on the first invalid
record ("error", the default) or skip invalid records and log one summary warning per
load ("skip"); the policy in force for datasets registered without one
(:func:`invalid_record_policy`); and a record's problem, ``(reason, detail)``.

Which records are invalid is :mod:`kpext.data.coco_validation`'s concern; the policy is
described with the loader, :mod:`kpext.data.coco_keypoints`.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from typing import Iterator, List, Tuple

from .keypoint_metadata import KeypointDataError

__all__ = [
    "ON_INVALID_CHOICES",
    "invalid_record_policy",
    "current_on_invalid",
    "check_on_invalid",
    "Problem",
    "record_problem",
    "ProblemReporter",
]

ON_INVALID_CHOICES: Tuple[str, ...] = ("error", "skip")

# How many skipped records the summary warning quotes.
_QUOTED_SKIPS = 5


_default_on_invalid = "error"


@contextlib.contextmanager
def invalid_record_policy(on_invalid: str) -> Iterator[None]:
    """Within the block, datasets registered without an explicit ``on_invalid`` load with this one.

    The trainer wraps its data loading in ``invalid_record_policy(cfg.DATASETS.KPEXT.ON_INVALID)``,
    so that the config decides for datasets registered before the config was read.
    """
    global _default_on_invalid
    check_on_invalid(on_invalid)
    previous, _default_on_invalid = _default_on_invalid, on_invalid
    try:
        yield
    finally:
        _default_on_invalid = previous


def current_on_invalid() -> str:
    """The policy for datasets registered without ``on_invalid`` ("error" outside any block)."""
    return _default_on_invalid


def check_on_invalid(on_invalid: str) -> None:
    if on_invalid not in ON_INVALID_CHOICES:
        raise ValueError(f"on_invalid must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}")


# A record's problem: (reason, detail) -- a short stable key that skips are
# counted by, and the message that follows the record's name.
Problem = Tuple[str, str]


def record_problem(reason: str, detail: str) -> Problem:
    return reason, detail


class ProblemReporter:
    """Applies ``on_invalid`` to each problem: raise at once, or remember it for
    the one summary warning logged after loading."""

    def __init__(self, json_file: str, on_invalid: str, logger: logging.Logger):
        self.json_file = json_file
        self.on_invalid = on_invalid
        self.logger = logger  # the loader's: the summary is the load's warning
        self.skipped: List[Tuple[str, str]] = []  # (reason, "<record>: <detail>")

    def report(self, where: str, problem: Problem) -> None:
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
        self.logger.warning(
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
