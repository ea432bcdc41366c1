"""Files that are never left half-written: every writer of kpext (checkpoints, generated
datasets, ground-truth copies, pictures, videos, the bench's caches) writes a temporary file
beside the target and renames it, so a kill at any moment leaves the old file or the complete
new one, and a reader never sees a partial file."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import IO, Any, Iterator


def temporary_path(path: str) -> str:
    """A temporary name for ``path``: the same folder (``os.replace`` stays on one file
    system), a leading dot (not taken for output), this process and a random part (several
    processes, DDP ranks, may write the same file), and the same extension (OpenCV picks the
    format from it)."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{ext}")


@contextlib.contextmanager
def atomic_path(path: str, durable: bool = False) -> Iterator[str]:
    """Yield a temporary path to write ``path`` through; on success rename it to ``path``,
    on any error (or a missing file) remove it and leave ``path`` untouched. The folder is
    created if needed. ``durable``: also make the rename reach the disk (fsync of the folder),
    for files another file will point at (a checkpoint named by ``last_checkpoint``)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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
