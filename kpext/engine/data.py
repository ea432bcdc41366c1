"""Data loading for training: the bad-input policy applied to images that cannot be read."""

from __future__ import annotations

import logging

from detectron2.data import DatasetMapper

from ..data import KeypointDataError

logger = logging.getLogger(__name__)


class CheckedDatasetMapper(DatasetMapper):
    """DatasetMapper that names the image when it cannot be read or decoded.

    ``on_invalid="error"`` raises :class:`KeypointDataError` with the file and image id;
    ``"skip"`` logs a warning with a running count and returns None, which makes
    Detectron2's training dataset draw another image instead.
    """

    def __init__(self, cfg, is_train: bool = True, on_invalid: str = "error"):
        super().__init__(cfg, is_train)
        self.on_invalid = on_invalid
        self.num_skipped = 0

    def __call__(self, dataset_dict):
        try:
            return super().__call__(dataset_dict)
        except (
            OSError,
            ValueError,
            SyntaxError,
        ) as e:  # PIL raises these for missing/corrupt files
            if isinstance(e, KeypointDataError):
                raise
            where = f"{dataset_dict.get('file_name')} (image id {dataset_dict.get('image_id')})"
            if self.on_invalid != "skip":
                raise KeypointDataError(f"{where}: cannot read the image: {e}") from e
            self.num_skipped += 1
            logger.warning(
                "Skipping %s: cannot read the image (%s); %d image(s) skipped so far in this "
                "worker (DATASETS.KPEXT.ON_INVALID='skip')",
                where,
                e,
                self.num_skipped,
            )
            return None
