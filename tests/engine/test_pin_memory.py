"""Pinned host memory for the training loader's batches when the model trains on CUDA only."""

import pytest
import torch
from torch.utils.data import DataLoader

from kpext.engine.data import _torch_loader, pin_memory_for_device

from detectron2.data import build_detection_train_loader


def records(n: int = 4):
    return [{"width": 8, "height": 6, "image": torch.zeros(3, 6, 8)} for _ in range(n)]


def loaders():
    common = {"mapper": lambda d: d, "total_batch_size": 2, "num_workers": 0}
    return {
        "aspect-ratio groups": build_detection_train_loader(records(), **common),
        "plain batches": build_detection_train_loader(
            records(), aspect_ratio_grouping=False, **common
        ),
        "groups, collated": build_detection_train_loader(records(), collate_fn=list, **common),
    }


@pytest.mark.parametrize("kind", ["aspect-ratio groups", "plain batches", "groups, collated"])
def test_pinned_for_cuda_only(kind, monkeypatch):
    loader = loaders()[kind]
    inner = _torch_loader(loader)
    assert isinstance(inner, DataLoader) and not inner.pin_memory
    assert pin_memory_for_device(loader, "cpu") is loader and not inner.pin_memory
    # No CUDA here: asking for cuda must not pin (the CPU path stays as it was).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    pin_memory_for_device(loader, "cuda")
    assert not inner.pin_memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    pin_memory_for_device(loader, "cuda:0")
    assert inner.pin_memory


def test_cpu_loader_still_yields_batches():
    loader = pin_memory_for_device(loaders()["aspect-ratio groups"], "cpu")
    batch = next(iter(loader))
    assert len(batch) == 2 and batch[0]["image"].shape == (3, 6, 8)
