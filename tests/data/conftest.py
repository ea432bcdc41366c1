"""Fixtures of the data tests: a dataset name that is unregistered afterwards, and caplog
that sees kpext's records."""

import logging
import uuid

import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog


@pytest.fixture
def dataset_name():
    """A fresh dataset name, removed from DatasetCatalog and MetadataCatalog afterwards."""
    name = f"kpext_test_{uuid.uuid4().hex[:8]}"
    yield name
    for catalog in (DatasetCatalog, MetadataCatalog):
        if name in catalog.list():
            catalog.remove(name)


@pytest.fixture
def kpext_log(caplog):
    """caplog that sees kpext's records (INFO and up) even where a logger setup stops
    propagation."""
    log = logging.getLogger("kpext")
    old_level, old_propagate = log.level, log.propagate
    log.addHandler(caplog.handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the handler is attached here: avoid counting records twice
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(old_level)
    log.propagate = old_propagate
