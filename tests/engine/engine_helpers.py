"""Constants and data makers shared by the engine tests (imported by their conftest and modules)."""

import os

from kpext.engine import build_seeded_train_loader
from kpext_synth.people import HELDOUT_STYLES, SyntheticConfig, generate_split

from detectron2.modeling import build_model
from detectron2.solver import build_optimizer
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The generator's default (the classic style only): the tiny train and val sets of the tests.
DEFAULT_STYLES = SyntheticConfig(num_images=1).styles

TRAIN_NET = os.path.join(REPO, "projects", "PoseEstimation", "train_net.py")
BASE_CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")

# A model small enough for a few iterations in seconds on 2 cores.
TINY_OVERRIDES = [
    "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128",
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32", "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "64",
    "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
]  # fmt: skip


# Small enough for a few iterations in seconds on 2 cores: 96 px input, thin layers.
FACE_TINY_OVERRIDES = [
    "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "96",
    "INPUT.MIN_SIZE_TEST", "96", "INPUT.MAX_SIZE_TEST", "96",
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)", "MODEL.KPEXT.HOURGLASS.CHANNELS", "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16", "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "32",
    "SOLVER.IMS_PER_BATCH", "4", "DATALOADER.NUM_WORKERS", "0",
]  # fmt: skip


def make_tiny_synthetic(root) -> None:
    """8 train, 4 val and 4 held-out-style val images of 128 x 128 under ``root/synthetic``."""
    for split, n, seed, styles in (
        ("train", 8, 0, DEFAULT_STYLES),
        ("val", 4, 1, DEFAULT_STYLES),
        ("val_heldout", 4, 2, HELDOUT_STYLES),
    ):
        cfg = SyntheticConfig(
            num_images=n,
            seed=seed,
            styles=styles,
            width=128,
            height=128,
            min_people=1,
            max_people=3,
            min_person_height=40,
        )
        generate_split(str(root / "synthetic"), split, cfg, show_progress=False)


def train_on_one_batch(cfg, steps: int):
    """Train the whole model (RPN, box and keypoint heads) for ``steps`` steps on one fixed
    batch (the first of the data order ``cfg.SEED`` gives) with the config's optimizer, from
    weights of seed 0. Returns each step's losses as floats
    (Detectron2's loss names plus ``"total"``), the model and the batch."""
    # Every generator, not torch's alone: the batch's augmentations (flip, resize) draw from
    # numpy's global generator, which the tests run before this one would otherwise set.
    seed_all_rng(0)
    model = build_model(cfg)
    model.train()
    optimizer = build_optimizer(cfg, model)
    batch = next(iter(build_seeded_train_loader(cfg)))
    history = []
    with EventStorage():
        for _ in range(steps):
            loss_dict = model(batch)
            total = sum(loss_dict.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            history.append({**{k: v.item() for k, v in loss_dict.items()}, "total": total.item()})
    return history, model, batch
