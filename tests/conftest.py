"""Shared fixtures: kpext imported first (it bridges the Python-only detectron2 here)."""

import os

import pytest
import torch

import kpext  # noqa: F401

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
