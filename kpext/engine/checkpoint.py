"""Checkpoints that are never left half-written: :func:`kpext.io.atomic_open` (a temporary
file, then a rename), durable, so the rename is on disk before "last_checkpoint" may point at
the file."""

from __future__ import annotations

import os

import torch

from detectron2.checkpoint import DetectionCheckpointer

from ..io import atomic_open


class AtomicCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer whose checkpoints and ``last_checkpoint`` tag are written atomically.

    A training killed while saving (SIGKILL included) resumes from the last complete
    checkpoint with ``--resume``. Save folders that are not local paths (PathManager
    URIs) fall back to Detectron2's writer.
    """

    def _is_local(self) -> bool:
        return bool(self.save_dir) and "://" not in self.save_dir

    def save(self, name: str, **kwargs) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        if not self._is_local():
            return super().save(name, **kwargs)
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        with atomic_open(save_file, "wb", durable=True) as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        if not self._is_local():
            return super().tag_last_checkpoint(last_filename_basename)
        path = os.path.join(self.save_dir, "last_checkpoint")
        with atomic_open(path, "w", durable=True, encoding="utf-8") as f:
            f.write(last_filename_basename)
