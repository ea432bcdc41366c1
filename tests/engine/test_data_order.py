"""The training data order follows SEED, and only SEED, on every Detectron2: one seed gives
one order twice (whatever numpy's global generator holds), two seeds give two orders, and a
negative SEED draws a fresh order each time (Detectron2's documented "fully randomize")."""

import itertools
import random

import numpy as np
import pytest
import torch

from kpext import add_kpext_config
from kpext.engine import build_seeded_train_loader, data_order_seed

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

NAME = "kpext_test_data_order"
NUM_IMAGES = 40


def _records():
    # No "annotations" key: the loader's filters and class histogram leave such records alone.
    return [
        {"image_id": i, "file_name": f"{i}.jpg", "height": 10, "width": 10}
        for i in range(NUM_IMAGES)
    ]


@pytest.fixture(scope="module")
def order_cfg():
    if NAME not in DatasetCatalog.list():
        DatasetCatalog.register(NAME, _records)
        MetadataCatalog.get(NAME).set(thing_classes=["person"])
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.DATASETS.TRAIN = (NAME,)
    cfg.MODEL.KEYPOINT_ON = False
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = False
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = False
    cfg.SOLVER.IMS_PER_BATCH = 4
    return cfg


def first_ids(cfg, seed: int, batches: int = 15):
    """Image ids of the first ``batches`` batches the loader gives at ``SEED = seed``, with
    numpy's and Python's global generators scrambled first (they must not matter)."""
    cfg = cfg.clone()
    cfg.SEED = seed
    np.random.seed(random.SystemRandom().randrange(2**31))
    random.seed(random.SystemRandom().randrange(2**31))
    loader = build_seeded_train_loader(cfg, mapper=lambda record: record)
    return [r["image_id"] for batch in itertools.islice(loader, batches) for r in batch]


def test_one_seed_gives_one_order(order_cfg):
    first, second = first_ids(order_cfg, 7), first_ids(order_cfg, 7)
    assert first == second
    # 15 batches of 4 cross the end of the first epoch: every image once, then a new order.
    assert sorted(first[:NUM_IMAGES]) == list(range(NUM_IMAGES))
    assert first[NUM_IMAGES:] != first[: len(first) - NUM_IMAGES]


def test_two_seeds_give_two_orders(order_cfg):
    assert first_ids(order_cfg, 7) != first_ids(order_cfg, 8)


def test_seed_is_torch_generator_shuffle(order_cfg):
    """Detectron2's TrainingSampler contract, computed here on its own: a permutation from
    ``torch.Generator().manual_seed(SEED)``, the same on v0.6 and upstream."""
    expected = torch.randperm(NUM_IMAGES, generator=torch.Generator().manual_seed(3)).tolist()
    assert first_ids(order_cfg, 3, batches=NUM_IMAGES // 4) == expected


def test_negative_seed_draws_a_new_order(order_cfg):
    cfg = order_cfg.clone()
    cfg.SEED = -1
    seeds = {data_order_seed(cfg) for _ in range(3)}
    assert len(seeds) == 3 and all(s >= 0 for s in seeds)
    assert first_ids(order_cfg, -1) != first_ids(order_cfg, -1)
