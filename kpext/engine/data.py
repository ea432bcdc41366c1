"""Data loading for training: the bad-input policy applied to images that cannot be read,
pinned host memory for batches bound for a GPU, and a data order that follows ``SEED`` on
every Detectron2."""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch.utils.data import DataLoader

from detectron2.data import (
    DatasetMapper,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.data.samplers import RepeatFactorTrainingSampler, TrainingSampler
from detectron2.utils import comm

from ..data import KeypointDataError
from ..data.facing import facing_class, mirrored_yaw, read_yaw

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

    def _transform_annotations(self, dataset_dict, transforms, image_shape):
        """Detectron2's (the same in v0.6 and upstream), and each person's facing class
        (``instances.gt_facing``, :mod:`kpext.data.facing`) where the annotations carry a
        ``"yaw"``: set before empty instances are dropped, so it stays aligned with them, and
        mirrored with the image (a flip negates the yaw).

        A copy of Detectron2's method with that one step added: Detectron2 has no hook between
        ``annotations_to_instances`` and ``filter_empty_instances``.
        tests/engine/test_transform_annotations.py pins the copy to the Detectron2 installed
        (v0.6 by ``make test``, upstream by ``make test-upstream``)."""
        for anno in dataset_dict["annotations"]:
            if not self.use_instance_mask:
                anno.pop("segmentation", None)
            if not self.use_keypoint:
                anno.pop("keypoints", None)
        annos = [
            utils.transform_instance_annotations(
                obj, transforms, image_shape, keypoint_hflip_indices=self.keypoint_hflip_indices
            )
            for obj in dataset_dict.pop("annotations")
            if obj.get("iscrowd", 0) == 0
        ]
        instances = utils.annotations_to_instances(
            annos, image_shape, mask_format=self.instance_mask_format
        )
        facing = facing_targets(annos, flips_horizontally(transforms))
        if facing is not None:
            instances.gt_facing = facing
        if self.recompute_boxes:
            instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
        dataset_dict["instances"] = utils.filter_empty_instances(instances)


def flips_horizontally(transforms) -> bool:
    """Whether a TransformList mirrors the image (an odd number of horizontal flips), as
    Detectron2 decides when it swaps the keypoints' left and right."""
    return sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms) % 2 == 1


def facing_targets(annotations, flipped: bool) -> Optional[torch.Tensor]:
    """N long facing classes of N annotations (-1 where one has no ``"yaw"``), mirrored when
    ``flipped``; None when none has a yaw (the instances then get no ``gt_facing``)."""
    yaws = [read_yaw(a) for a in annotations]
    if all(y is None for y in yaws):
        return None
    if flipped:
        yaws = [None if y is None else mirrored_yaw(y) for y in yaws]
    return torch.tensor([facing_class(y) for y in yaws], dtype=torch.long)


def _torch_loader(loader) -> Optional[DataLoader]:
    """The torch DataLoader inside Detectron2's train loader: the loader itself, or the one an
    ``AspectRatioGroupedDataset`` (``.dataset``) or a ``MapDataset`` (``._dataset``) wraps."""
    for _ in range(4):
        if isinstance(loader, DataLoader):
            return loader
        # (no ``or``: truth-testing a DataLoader asks for its length, which an infinite one lacks)
        inner = getattr(loader, "dataset", None)
        loader = getattr(loader, "_dataset", None) if inner is None else inner
    return None


def pin_memory_for_device(loader, device: str):
    """Make the loader's batches land in pinned (page-locked) host memory when ``device`` is a
    CUDA device and CUDA is available; returns ``loader``.

    Detectron2's ``build_detection_train_loader`` has no ``pin_memory`` option; its torch
    DataLoader reads the attribute when an epoch's iterator starts, so it is set on the built
    loader. The model's copy of each image to the GPU then reads pinned memory (a DMA copy
    without a staging buffer). On the CPU nothing changes.
    """
    if not (str(device).startswith("cuda") and torch.cuda.is_available()):
        return loader
    inner = _torch_loader(loader)
    if inner is not None:
        inner.pin_memory = True
    return loader


def data_order_seed(cfg) -> int:
    """The seed of the training data order: ``cfg.SEED`` when it is >= 0, else one random
    seed drawn once and shared by all workers (Detectron2's documented meaning of a negative
    ``SEED``: "fully randomize everything")."""
    return int(cfg.SEED) if cfg.SEED >= 0 else int(comm.shared_random_seed())


def build_seeded_train_sampler(cfg, dataset: list, seed: int):
    """``cfg.DATALOADER.SAMPLER_TRAIN`` over ``dataset`` (a list of dataset dicts), shuffled
    from ``seed``; None for a sampler kpext does not build (Detectron2 then builds its own)."""
    name = cfg.DATALOADER.SAMPLER_TRAIN
    if name == "TrainingSampler":
        return TrainingSampler(len(dataset), seed=seed)
    if name == "RepeatFactorTrainingSampler":
        factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
            dataset, cfg.DATALOADER.REPEAT_THRESHOLD
        )
        return RepeatFactorTrainingSampler(factors, seed=seed)
    return None


def build_seeded_train_loader(cfg, mapper=None):
    """Detectron2's ``build_detection_train_loader`` with the sampler seeded by
    :func:`data_order_seed`, so that one ``SEED`` gives one data order on every Detectron2.

    Why: Detectron2 v0.6 builds ``TrainingSampler(len(dataset))``, whose seed comes from
    numpy's global generator; upstream builds ``TrainingSampler(..., seed=cfg.SEED)``, so
    there the default ``SEED -1`` gives the same order on every run and reseeding numpy
    changes nothing. Samplers other than ``TrainingSampler`` and
    ``RepeatFactorTrainingSampler`` are left to Detectron2 (with a warning).
    """
    dataset = get_detection_dataset_dicts(
        cfg.DATASETS.TRAIN,
        filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
        min_keypoints=(
            cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
        ),
        proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None,
    )
    sampler = build_seeded_train_sampler(cfg, dataset, data_order_seed(cfg))
    if sampler is None:
        logger.warning(
            "DATALOADER.SAMPLER_TRAIN %s: its data order follows Detectron2's own seeding, "
            "which differs between Detectron2 versions (kpext seeds TrainingSampler and "
            "RepeatFactorTrainingSampler from SEED)",
            cfg.DATALOADER.SAMPLER_TRAIN,
        )
        return build_detection_train_loader(cfg, mapper=mapper, dataset=dataset)
    return build_detection_train_loader(cfg, mapper=mapper, dataset=dataset, sampler=sampler)
