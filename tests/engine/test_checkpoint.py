"""Atomic checkpoint writes: a failure mid-write never replaces a good file."""

import pytest
import torch
from torch import nn

from kpext.engine import AtomicCheckpointer


def test_a_save_killed_midway_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model_final.pth"
    path.write_bytes(b"complete old checkpoint")

    def killed_midway(data, f):
        f.write(b"half of a new chec")
        raise KeyboardInterrupt  # stands for a kill during torch.save

    monkeypatch.setattr(torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointer(nn.Linear(3, 2), str(tmp_path)).save("model_final")
    assert path.read_bytes() == b"complete old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_final.pth"]


def test_checkpointer_saves_tags_and_resumes(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    AtomicCheckpointer(model, str(tmp_path)).save("model_0000004", iteration=4)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"

    restored = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    extra = AtomicCheckpointer(restored, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 4
    for a, b in zip(model.parameters(), restored.parameters()):
        assert torch.equal(a, b)
