"""Test-session settings: builtin datasets are generated small, in a private folder.

Set before any seg_research import, and inherited by the subprocesses tests start.
"""
import os
import tempfile

os.environ.setdefault("SEG_DATASETS", tempfile.mkdtemp(prefix="seg_test_datasets_"))
os.environ.setdefault("SEG_SHAPES_TRAIN", "12")
os.environ.setdefault("SEG_SHAPES_VAL", "6")
os.environ.setdefault("SEG_SHAPES_SIZE", "64")


import pytest  # noqa: E402  (after the environment is set)


@pytest.fixture
def set_aside_registrations():
    """``set_aside(names)`` removes those datasets' registrations and metadata for the test;
    they are restored afterwards (tests re-register builtin names against fixture roots)."""
    from seg_research.data import DatasetCatalog, MetadataCatalog

    saved = {}

    def set_aside(names):
        for name in names:
            saved[name] = (DatasetCatalog.pop(name), MetadataCatalog.pop(name))

    yield set_aside
    for name, (loader, meta) in saved.items():
        DatasetCatalog.pop(name, None)
        DatasetCatalog.register(name, loader)
        MetadataCatalog[name] = meta
