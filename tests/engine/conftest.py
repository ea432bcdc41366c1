"""Fixtures of the engine tests: a tiny synthetic dataset."""

import pytest
from engine_helpers import make_tiny_synthetic


@pytest.fixture(scope="session")
def tiny_synthetic_root(tmp_path_factory):
    """A dataset root (for KPEXT_DATASETS) with a tiny synthetic train/val set."""
    root = tmp_path_factory.mktemp("datasets")
    make_tiny_synthetic(root)
    return root
