"""Test-session settings: builtin datasets are generated small, in a private folder.

Set before any seg_research import, and inherited by the subprocesses tests start.
"""
import os
import tempfile

os.environ.setdefault("SEG_DATASETS", tempfile.mkdtemp(prefix="seg_test_datasets_"))
os.environ.setdefault("SEG_SHAPES_TRAIN", "12")
os.environ.setdefault("SEG_SHAPES_VAL", "6")
os.environ.setdefault("SEG_SHAPES_SIZE", "64")
