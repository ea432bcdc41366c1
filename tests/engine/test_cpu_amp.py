"""SOLVER.AMP.ENABLED on the CPU: bf16 autocast in the forward, float32 losses, float32 with a
warning where the CPU has no native bf16; resume and the divergence message still work."""

import itertools
import logging

import pytest
import torch
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES, train_on_one_batch

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.engine import KpextTrainer, amp
from kpext.engine.amp import NATIVE_BF16_FLAGS, CPUAMPTrainer, cpu_flags, native_bf16_flags
from kpext.modeling.heads import KpextKRCNNHead

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.engine import SimpleTrainer
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY
from detectron2.solver import build_optimizer
from detectron2.utils.events import EventStorage

DATASET = "kpext_test_cpu_amp_train"


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class NaNFromSecondCallHead(KpextKRCNNHead):
    """KpextKRCNNHead whose loss turns NaN from its second training call on."""

    calls = 0

    def heatmap_losses(self, stages, keypoints, boxes, num_images):
        losses = super().heatmap_losses(stages, keypoints, boxes, num_images)
        NaNFromSecondCallHead.calls += 1
        if NaNFromSecondCallHead.calls > 1:
            losses["loss_keypoint"] = losses["loss_keypoint"] * float("nan")
        return losses


def tiny_cfg(root, tmp_path=None, head: str = "KpextKRCNNHead", max_iter: int = 2):
    if DATASET not in DatasetCatalog.list():
        register_keypoint_coco(
            DATASET,
            str(root / "synthetic" / "annotations" / "person_keypoints_train.json"),
            str(root / "synthetic" / "train" / "images"),
        )
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = head
    cfg.DATASETS.TRAIN = (DATASET,)
    cfg.DATASETS.TEST = ()
    cfg.SOLVER.AMP.ENABLED = True
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.STEPS = ()
    if tmp_path is not None:
        cfg.OUTPUT_DIR = str(tmp_path)
    return cfg


@pytest.fixture
def amp_log(caplog):
    """caplog that sees kpext.engine.amp's records even where a logger setup stops propagation."""
    log = logging.getLogger(amp.__name__)
    old_level, old_propagate = log.level, log.propagate
    log.addHandler(caplog.handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the handler is attached here: avoid counting records twice
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(old_level)
    log.propagate = old_propagate


def record_dtypes(model):
    """The first conv's output dtype and the model's loss dtypes, at every training forward."""
    seen = {"conv": [], "losses": []}
    model.backbone.bottom_up.stem.conv1.register_forward_hook(
        lambda m, i, out: seen["conv"].append(out.dtype)
    )
    model.register_forward_hook(
        lambda m, i, out: seen["losses"].append({k: v.dtype for k, v in out.items()})
    )
    return seen


def test_native_bf16_flags_agree_with_cpuinfo():
    found = native_bf16_flags()
    assert set(found) <= set(NATIVE_BF16_FLAGS)
    flags = cpu_flags()
    if flags:  # Linux: torch's check and the kernel's flags name the same AVX-512 BF16
        assert ("avx512_bf16" in found) == ("avx512_bf16" in flags)


def test_cpu_amp_trainer_autocasts_the_forward_and_lowers_the_loss(tiny_synthetic_root):
    # Detectron2's stock keypoint head (kpext's heads: tests/modeling/test_mixed_precision.py).
    cfg = tiny_cfg(tiny_synthetic_root, head="KRCNNConvDeconvUpsampleHead")
    cfg.SOLVER.BASE_LR = 0.005
    _, model, batch = train_on_one_batch(cfg, 0)  # seed-0 weights, untrained
    with EventStorage():
        fp32_total = sum(model(batch).values()).item()
    seen = record_dtypes(model)
    trainer = CPUAMPTrainer(model, itertools.repeat(batch), build_optimizer(cfg, model))
    trainer.train(0, 6)

    assert seen["conv"] and set(seen["conv"]) == {torch.bfloat16}
    for losses in seen["losses"]:  # RPN, box, keypoint: computed in float32, not cast afterwards
        assert set(losses.values()) == {torch.float32}, losses
    assert trainer.model is model  # the autocast wrapper lives only inside run_step
    assert all(p.dtype == torch.float32 for p in model.parameters())

    total = [v for v, _ in trainer.storage.history("total_loss").values()]
    assert all(torch.isfinite(torch.tensor(total)))
    assert total[0] == pytest.approx(fp32_total, rel=0.05)  # bf16 rounding only
    assert total[-1] < 0.8 * total[0], total


def test_kpext_trainer_uses_bf16_autocast_on_a_native_bf16_cpu(
    tiny_synthetic_root, tmp_path, monkeypatch, amp_log
):
    monkeypatch.setattr(amp, "native_bf16_flags", lambda: ("avx512_bf16",))
    trainer = KpextTrainer(tiny_cfg(tiny_synthetic_root, tmp_path))
    assert type(trainer._trainer) is CPUAMPTrainer
    assert "bf16 autocast (native: avx512_bf16)" in amp_log.text
    seen = record_dtypes(trainer.model)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert set(seen["conv"]) == {torch.bfloat16}
    for losses in seen["losses"]:  # with the RoIAlign KpextTrainer builds (MODEL.KPEXT.ROI_ALIGN)
        assert set(losses.values()) == {torch.float32}, losses
    assert (tmp_path / "model_final.pth").is_file()


def test_without_native_bf16_it_warns_and_trains_in_float32(
    tiny_synthetic_root, tmp_path, monkeypatch, amp_log
):
    monkeypatch.setattr(amp, "native_bf16_flags", lambda: ())
    trainer = KpextTrainer(tiny_cfg(tiny_synthetic_root, tmp_path))
    warnings = [r for r in amp_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "amx_bf16" in warnings[0].getMessage() and "avx512_bf16" in warnings[0].getMessage()
    assert "float32" in warnings[0].getMessage()
    assert type(trainer._trainer) is SimpleTrainer
    seen = record_dtypes(trainer.model)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert set(seen["conv"]) == {torch.float32}


def test_amp_training_resumes_from_its_checkpoint(tiny_synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setattr(amp, "native_bf16_flags", lambda: ("avx512_bf16",))
    cfg = tiny_cfg(tiny_synthetic_root, tmp_path, max_iter=2)
    cfg.SOLVER.CHECKPOINT_PERIOD = 100  # model_final only: what --resume reads
    first = KpextTrainer(cfg)
    first.resume_or_load(resume=False)
    first.train()
    saved = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert saved["iteration"] == 1
    # Upstream Detectron2 also saves the optimizer (v0.6 does not): the same state as fp32's.
    saves_optimizer = "_trainer" in saved["trainer"]
    if saves_optimizer:
        assert saved["trainer"]["_trainer"]["optimizer"]["state"]

    cfg.SOLVER.MAX_ITER = 4
    resumed = KpextTrainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    if saves_optimizer:
        assert resumed.optimizer.state_dict()["state"]
    resumed.train()
    final = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["iteration"] == 3


def test_divergence_under_amp_names_the_iteration_and_the_loss(
    tiny_synthetic_root, tmp_path, monkeypatch
):
    monkeypatch.setattr(amp, "native_bf16_flags", lambda: ("avx512_bf16",))
    cfg = tiny_cfg(tiny_synthetic_root, tmp_path, head="NaNFromSecondCallHead", max_iter=4)
    NaNFromSecondCallHead.calls = 0
    trainer = KpextTrainer(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match=r"iteration 1: loss_keypoint = nan is not finite"):
        trainer.train()
