"""Shared fixtures: kpext imported first (it bridges the Python-only detectron2 here)."""
import os

import kpext  # noqa: F401
import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
