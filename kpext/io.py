"""Files that are never left half-written: every writer of kpext (checkpoints, generated
datasets, ground-truth copies, evaluation summaries, pictures, videos, exported models, the
bench's caches) writes a temporary file beside the target and renames it, so a kill at any
moment leaves the old file or the complete new one, and a reader never sees a partial file.

:func:`atomic_path` (any writer that takes a path), :func:`atomic_open` (a file object),
:func:`atomic_imwrite` (a picture through OpenCV).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import IO, Any, Iterator, Sequence

import cv2
import numpy as np


def temporary_path(path: str) -> str:
    """A temporary name for ``path``: the same folder (``os.replace`` stays on one file
    system), a leading dot (not taken for output), this process and a random part (several
    processes, DDP ranks, may write the same file), and the same extension (OpenCV picks the
    format from it)."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{ext}")


@contextlib.contextmanager
def atomic_path(path: str, durable: bool = False, same_name: bool = False) -> Iterator[str]:
    """Yield a temporary path to write ``path`` through; on success rename it to ``path``,
    on any error (or a missing file) remove it and leave ``path`` untouched. The folder is
    created if needed. ``durable``: also make the rename reach the disk (fsync of the folder),
    for files another file will point at (a checkpoint named by ``last_checkpoint``).
    ``same_name``: the temporary file has ``path``'s own name, in a temporary folder beside
    it, for writers that record the file's name in it (a TorchScript archive names its root
    folder after its file)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_dir = os.path.splitext(temporary_path(path))[0] if same_name else None
    tmp = os.path.join(tmp_dir, os.path.basename(path)) if tmp_dir else temporary_path(path)
    try:
        if tmp_dir:
            os.mkdir(tmp_dir)
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        if tmp_dir and os.path.isdir(tmp_dir):
            os.rmdir(tmp_dir)
    if durable:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def atomic_open(
    path: str, mode: str = "w", durable: bool = False, **open_kwargs: Any
) -> Iterator[IO]:
    """``open(path, mode)`` through :func:`atomic_path`; ``durable`` also fsyncs the file's
    content before the rename. A plain ``open`` gives the file the usual umask permissions."""
    with atomic_path(path, durable=durable) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())


def atomic_imwrite(path: str, image: np.ndarray, params: Sequence[int] = ()) -> str:
    """``cv2.imwrite(path, image, params)`` through :func:`atomic_path` (the format from
    ``path``'s extension). Returns ``path``; raises OSError when OpenCV cannot write it."""
    with atomic_path(path) as tmp:
        try:
            written = cv2.imwrite(tmp, image, list(params))
        except cv2.error as e:  # e.g. an extension OpenCV has no writer for
            raise OSError(f"cannot write picture {path}: {e.err}") from None
        if not written:
            raise OSError(f"cannot write picture {path}")
    return path
