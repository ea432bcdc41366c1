"""Fixtures of the export tests: a tiny detector trained for a few steps (its detection
counts differ from image to image, which is what an exported graph must follow)."""

import pytest
from export_helpers import demo_cfg, train_tiny_detector


@pytest.fixture(scope="session")
def trained_detector(tmp_path_factory):
    """TinyDetector (state_dict, dataset root, export threshold) of the tiny Keypoint R-CNN
    trained 20 steps (KpextKRCNNHead)."""
    return train_tiny_detector(tmp_path_factory.mktemp("export_datasets"))


@pytest.fixture(scope="session")
def trained_demo_detector(tmp_path_factory):
    """TinyDetector of ``make demo``'s model (its config, on the tiny dataset) trained 60 steps
    at the config's rate: after 20 its scores are all near 0.2, with no threshold that separates
    people from the empty image."""
    root = tmp_path_factory.mktemp("export_demo_datasets")
    return train_tiny_detector(root, demo_cfg, steps=60, lr=None)
