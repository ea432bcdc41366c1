"""No hidden host reads in the heads' forward passes, checked without a GPU.

On CUDA, reading a tensor's value on the host (``bool(t)``, ``.item()``, ``float(t)``,
``.tolist()``), boolean-mask indexing and ``nonzero`` (whose output size is data-dependent)
wait for the device: a hidden sync in every step. Copying a Python list or constant to the
device (``torch.tensor``, ``new_tensor``, indexing with a list) is a host copy per call.
``torch.cuda.set_sync_debug_mode`` sees the first kind only on a GPU; :class:`HostReads`
sees both kinds on the CPU, as the calls that cause them, and counts those made from kpext's
own files (Detectron2's and torch's are out of scope).

Every kpext head runs its training forward (losses, backward) and its inference forward
(decoding, flip test) under it, with every codec, the focal loss and the OKS loss.
"""

import os
import sys

import pytest
import torch
from head_helpers import head_cfg, training_instances
from torch.overrides import TorchFunctionMode

import kpext
from kpext.modeling.codecs import OneHotCodec, onehot
from kpext.modeling.heads import GaussianKeypointHead, HourglassKeypointHead, KpextKRCNNHead
from kpext.modeling.postprocess import pose_nms

from detectron2.layers import ShapeSpec
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

KPEXT_DIR = os.path.dirname(os.path.abspath(kpext.__file__)) + os.sep
KPEXT_PARENT = os.path.dirname(KPEXT_DIR.rstrip(os.sep))
TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
K = 4
FLIP = [1, 0, 3, 2]
SHAPE = ShapeSpec(channels=8, height=14, width=14)

T = torch.Tensor
# Calls whose result is a tensor's value on the host (a device sync on CUDA).
HOST_READS = {
    T.__bool__, T.__float__, T.__int__, T.__index__, T.item, T.tolist, T.numpy, T.cpu,
    torch.nonzero, T.nonzero, torch.argwhere, T.argwhere, torch.masked_select, T.masked_select,
    torch.unique, T.unique, torch.equal, T.equal, torch.allclose, T.allclose,
    torch.is_nonzero, T.is_nonzero,
}  # fmt: skip
# Calls that build a tensor from host data (a host-to-device copy on CUDA).
HOST_COPIES = {torch.tensor, T.new_tensor}


def _host_index(index) -> str:
    """Why indexing with ``index`` needs the host, or ""."""
    for item in index if isinstance(index, tuple) else (index,):
        if isinstance(item, torch.Tensor) and item.dtype == torch.bool:
            return "boolean-mask index"
        if isinstance(item, list):
            return "list index"
    return ""


class HostReads(TorchFunctionMode):
    """Records ``(what, file:line)`` for each host read or host copy made from ``roots``.

    The caller is the first frame outside torch's own files, so that a read inside a torch
    function counts for whoever called that function.
    """

    def __init__(self, roots=(KPEXT_DIR,)):
        super().__init__()
        self.roots = tuple(roots)
        self.found = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        what = self._kind(func, args)
        if what:
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename.startswith(TORCH_DIR):
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(self.roots):
                where = os.path.relpath(frame.f_code.co_filename, KPEXT_PARENT)
                self.found.append((what, f"{where}:{frame.f_lineno}"))
        return func(*args, **kwargs)

    @staticmethod
    def _kind(func, args) -> str:
        if func in HOST_READS:
            return getattr(func, "__name__", str(func))
        if func in HOST_COPIES:
            return f"{func.__name__} (host copy)"
        if func is torch.as_tensor and args and not isinstance(args[0], torch.Tensor):
            return "as_tensor (host copy)"
        if func in (T.__getitem__, T.__setitem__) and len(args) > 1:
            return _host_index(args[1])
        return ""


def reads_made_by(fn, roots=(KPEXT_DIR,)):
    mode = HostReads(roots)
    with mode:
        fn()
    return mode.found


# ---------------------------------------------------------------------------
# The check itself can fail
# ---------------------------------------------------------------------------


def test_the_check_sees_host_reads_and_copies():
    x = torch.randn(5)
    here = (os.path.abspath(__file__),)
    assert [w for w, _ in reads_made_by(lambda: bool(x.any()), here)] == ["__bool__"]
    assert [w for w, _ in reads_made_by(lambda: float(x.max()), here)] == ["__float__"]
    assert [w for w, _ in reads_made_by(lambda: x.sum().item(), here)] == ["item"]
    assert [w for w, _ in reads_made_by(lambda: x[x > 0], here)] == ["boolean-mask index"]
    assert [w for w, _ in reads_made_by(lambda: x[[0, 2]], here)] == ["list index"]
    assert [w for w, _ in reads_made_by(lambda: x.new_tensor([1.0]), here)] == [
        "new_tensor (host copy)"
    ]
    # Device-side equivalents are not reads.
    assert reads_made_by(lambda: torch.where(x > 0, x, 0 * x).sum() * 0, here) == []
    # Only the given files count: the same read from this file is not kpext's.
    assert reads_made_by(lambda: bool(x.any())) == []


def test_the_check_sees_reads_inside_kpext():
    """Pose NMS (a greedy loop on the host, outside the heads) reads by design."""
    kpts = torch.rand(3, K, 3) * 50
    found = reads_made_by(lambda: pose_nms(kpts, torch.rand(3), torch.full((3,), 900.0), [0.5] * K))
    assert found and all(where.startswith("kpext/modeling/postprocess.py") for _, where in found)


# ---------------------------------------------------------------------------
# The heads
# ---------------------------------------------------------------------------


def sync_cfg(codec: str = "gaussian", loss: str = ""):
    """The shared head config, 8 channels wide, with the OKS loss on."""
    cfg = head_cfg(num_keypoints=K, width=8, CODEC=codec, LOSS=loss)
    cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT = 0.1
    cfg.TEST.KEYPOINT_OKS_SIGMAS = [0.5] * K
    return cfg


HEADS = {
    "krcnn": lambda: KpextKRCNNHead(sync_cfg(), SHAPE),
    "gaussian-mse-dark": lambda: GaussianKeypointHead(sync_cfg(), SHAPE),
    "gaussian-focal": lambda: GaussianKeypointHead(sync_cfg(loss="focal"), SHAPE),
    "gaussian-onehot": lambda: GaussianKeypointHead(sync_cfg("onehot"), SHAPE),
    "gaussian-softmax_gaussian": lambda: GaussianKeypointHead(sync_cfg("softmax_gaussian"), SHAPE),
    "hourglass": lambda: HourglassKeypointHead(sync_cfg(), SHAPE),
}


def sync_training_instances(num: int, seed: int, visible: bool = True) -> Instances:
    """The shared training RoIs with, when ``visible``, one keypoint on the far box corner
    (the one-hot edge rule); else with no labelled keypoint at all."""
    inst = training_instances(num, seed)
    kp = inst.gt_keypoints.tensor
    if not visible:
        kp[..., 2] = 0.0
    elif num:
        kp[-1, 0, :2] = inst.proposal_boxes.tensor[-1, 2:]
    return inst


def predicted_instances(num: int, seed: int) -> Instances:
    g = torch.Generator().manual_seed(seed)
    inst = Instances((400, 600))
    xy = torch.rand(num, 2, generator=g) * 200
    inst.pred_boxes = Boxes(torch.cat([xy, xy + torch.rand(num, 2, generator=g) * 150 + 2], 1))
    return inst


@pytest.fixture
def as_on_a_gpu(monkeypatch):
    """Take the code paths an accelerator takes: the one-hot decoder then sizes its search
    window without reading the boxes (on the CPU it reads them, which costs no sync)."""
    monkeypatch.setattr(onehot, "window_length_from_boxes", lambda device: False)


def train_step(head, batches):
    head.train()
    for instances in batches:
        x = torch.randn(sum(len(i) for i in instances), SHAPE.channels, 14, 14)
        losses = head(x, instances)
        sum(losses.values()).backward()


@pytest.mark.parametrize("name", list(HEADS))
def test_training_forward_makes_no_host_read(name, as_on_a_gpu):
    head = HEADS[name]()
    batches = [
        [sync_training_instances(3, 1), sync_training_instances(2, 2)],
        [sync_training_instances(2, 3, visible=False)],  # no target: zero loss, still a graph
        [sync_training_instances(0, 4), sync_training_instances(2, 5)],  # an image without RoIs
    ]
    train_step(head, batches[:1])  # warm-up: constants cached per device are built once
    assert reads_made_by(lambda: train_step(head, batches)) == []


@pytest.mark.parametrize("name", list(HEADS))
def test_inference_forward_makes_no_host_read(name, as_on_a_gpu):
    head = HEADS[name]()
    head.decoder.flip_indices = FLIP
    # person-level left/right decoding
    head.decoder.left_right_pairs = torch.tensor([[0, 1], [2, 3]])
    head.eval()
    x = torch.randn(5, SHAPE.channels, 14, 14)
    instances = [predicted_instances(3, 1), predicted_instances(0, 2), predicted_instances(2, 3)]
    with torch.no_grad():
        head(x, instances)  # warm-up: constants cached per device are built once, not per call
        found = reads_made_by(lambda: head(x, instances))
    assert found == []
    assert instances[0].pred_keypoints.shape == (3, K, 3)


def test_under_a_trainer_the_skipped_batch_counter_reads_once(as_on_a_gpu):
    """The one kept read: Detectron2's kpts_num_skipped_batches needs to know on the host
    whether a batch had any keypoint target; one read per step, for all stages."""
    head = HEADS["hourglass"]()  # two stages, one read
    with EventStorage() as storage:
        unlabelled = [[sync_training_instances(2, 3, visible=False)]]
        found = reads_made_by(lambda: train_step(head, unlabelled))
        assert storage.latest()["kpts_num_skipped_batches"][0] == 1
    assert [w for w, _ in found] == ["__bool__"]
    assert found[0][1].startswith("kpext/modeling/heads/base.py")


def test_onehot_window_sized_without_the_boxes_decodes_the_same(monkeypatch):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, K, 56, 56, generator=g) * 3
    xy = torch.rand(6, 2, generator=g) * 300
    sides = torch.tensor(
        [[2.0, 3.0], [20.0, 700.0], [56.0, 56.0], [133.3, 41.7], [1333, 800], [5, 90]]
    )
    boxes = torch.cat([xy, xy + sides], dim=1)
    codec = OneHotCodec()
    exact = codec.decode(logits, boxes)
    monkeypatch.setattr(onehot, "window_length_from_boxes", lambda device: False)
    assert torch.equal(codec.decode(logits, boxes), exact)
