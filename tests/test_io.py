"""kpext.io: a writer that fails leaves the old file and no temporary file; one that
succeeds replaces it whole; the temporary name keeps the extension (OpenCV needs it)."""

import os

import cv2
import numpy as np
import pytest

from kpext.io import atomic_open, atomic_path, temporary_path


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(str(path), "w") as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


@pytest.mark.parametrize("durable", [False, True])
def test_a_successful_writer_replaces_the_file(tmp_path, durable):
    path = tmp_path / "sub" / "out.txt"  # the folder is created
    with atomic_open(str(path), "w", durable=durable) as f:
        f.write("new")
        assert not path.exists()  # nothing visible before the rename
    assert path.read_text() == "new"
    assert os.listdir(path.parent) == ["out.txt"]


def test_temporary_names_keep_the_extension_and_differ(tmp_path):
    path = str(tmp_path / "picture.png")
    a, b = temporary_path(path), temporary_path(path)
    assert a != b and a.endswith(".png") and os.path.dirname(a) == str(tmp_path)
    assert os.path.basename(a).startswith(".")
    with atomic_path(path) as tmp:
        assert cv2.imwrite(tmp, np.zeros((4, 4, 3), np.uint8))
    assert cv2.imread(path).shape == (4, 4, 3) and os.listdir(tmp_path) == ["picture.png"]


def test_a_writer_that_writes_nothing_leaves_nothing(tmp_path):
    path = tmp_path / "never.bin"
    with pytest.raises(FileNotFoundError):
        with atomic_path(str(path)):
            pass  # no file written at the temporary path: the rename fails, nothing appears
    assert os.listdir(tmp_path) == []


def test_same_name_writes_through_a_file_of_the_targets_own_name(tmp_path):
    """For writers that record the file's name inside it (a TorchScript archive)."""
    path = tmp_path / "model.ts"
    with atomic_path(str(path), same_name=True) as tmp:
        assert os.path.basename(tmp) == "model.ts" and os.path.dirname(tmp) != str(tmp_path)
        with open(tmp, "w") as f:
            f.write("archive")
    assert path.read_text() == "archive" and os.listdir(tmp_path) == ["model.ts"]
    with pytest.raises(RuntimeError):
        with atomic_path(str(path), same_name=True) as tmp:
            open(tmp, "w").close()
            raise RuntimeError("killed")
    assert path.read_text() == "archive" and os.listdir(tmp_path) == ["model.ts"]


def test_pictures_are_written_whole_or_refused(tmp_path):
    from kpext.io import atomic_imwrite

    path = str(tmp_path / "a.jpg")
    assert atomic_imwrite(path, np.zeros((4, 4, 3), np.uint8)) == path
    assert cv2.imread(path).shape == (4, 4, 3) and os.listdir(tmp_path) == ["a.jpg"]
    with pytest.raises(OSError, match="cannot write picture"):
        atomic_imwrite(str(tmp_path / "a.unknown_format"), np.zeros((4, 4, 3), np.uint8))
    assert os.listdir(tmp_path) == ["a.jpg"]
