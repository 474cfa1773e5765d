import itertools
import logging

import numpy as np
import pytest
import torch

from seg_research.config import get_cfg
from seg_research.data import DataError, DatasetCatalog, MetadataCatalog
from seg_research.data.build import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from seg_research.data.samplers import TrainingSampler


def _records(n, with_annos=True):
    recs = []
    for i in range(n):
        r = {"file_name": f"{i}.png", "image_id": i, "height": 10, "width": 20 if i % 3 else 5}
        if with_annos:
            r["annotations"] = [{"bbox": [0, 0, 2, 2], "bbox_mode": 1, "category_id": i % 2, "iscrowd": int(i == 4)}] \
                if i % 4 else []
        recs.append(r)
    return recs


@pytest.fixture
def registered():
    names = ["build_a", "build_b"]
    DatasetCatalog.register("build_a", lambda: _records(8))
    MetadataCatalog.get("build_a").thing_classes = ["x", "y"]
    DatasetCatalog.register("build_b", lambda: _records(3, with_annos=False))
    yield names
    for n in names:
        DatasetCatalog.remove(n)
        MetadataCatalog.pop(n, None)


def test_filter_empty_counts_logged(registered, caplog):
    with caplog.at_level(logging.INFO):
        dicts = get_detection_dataset_dicts(("build_a",), filter_empty=True)
    # images 0 and 4 (i % 4 == 0) have no annotations and are dropped
    assert [d["image_id"] for d in dicts] == [1, 2, 3, 5, 6, 7]
    assert "Removed 2 images" in caplog.text
    assert len(get_detection_dataset_dicts(["build_a"], filter_empty=False)) == 8
    assert len(get_detection_dataset_dicts(["build_b"], filter_empty=True)) == 3  # no annotations key


def test_names_must_be_a_tuple(registered):
    with pytest.raises(TypeError, match=r"\('build_a',\)"):
        get_detection_dataset_dicts("build_a")


def test_category_id_out_of_range(registered):
    DatasetCatalog.register("build_bad", lambda: [{"file_name": "z.png", "image_id": 9, "height": 1, "width": 1,
                                                  "annotations": [{"category_id": 2, "bbox": [0, 0, 1, 1]}]}])
    MetadataCatalog.get("build_bad").thing_classes = ["x", "y"]
    try:
        with pytest.raises(DataError, match=r"category_id 2.*\[0, 2\).*z.png"):
            get_detection_dataset_dicts(["build_bad"])
    finally:
        DatasetCatalog.remove("build_bad")


def _noisy_mapper(d):
    return {"image_id": d["image_id"], "noise": float(np.random.rand()), "t": float(torch.rand(1))}


def _take(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_train_loader_is_deterministic_across_workers_and_resumes():
    dataset = _records(6)
    kwargs = dict(mapper=_noisy_mapper, total_batch_size=2, aspect_ratio_grouping=False)
    ref = _take(build_detection_train_loader(dataset, sampler=TrainingSampler(6, seed=7), num_workers=0, **kwargs), 5)
    workers = _take(build_detection_train_loader(dataset, sampler=TrainingSampler(6, seed=7), num_workers=2, **kwargs), 5)
    resumed = _take(build_detection_train_loader(dataset, sampler=TrainingSampler(6, seed=7), start_iter=3, **kwargs), 2)
    assert ref == workers  # augmentation randomness does not depend on the worker count
    assert ref[3:] == resumed  # and a resumed loader continues the exact stream
    assert all(len(b) == 2 for b in ref)


def test_aspect_ratio_grouping():
    dataset = _records(9)  # widths 5 (portrait) for i % 3 == 0, else 20
    loader = build_detection_train_loader(dataset, mapper=lambda d: d, sampler=TrainingSampler(9, seed=0),
                                          total_batch_size=3, aspect_ratio_grouping=True)
    for batch in _take(loader, 6):
        assert len({d["width"] < d["height"] for d in batch}) == 1


def test_train_loader_from_cfg_and_test_loader_order(registered):
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.TRAIN", "('build_a',)", "SOLVER.IMS_PER_BATCH", "3", "SEED", "1",
                         "DATALOADER.NUM_WORKERS", "0"])
    batch = next(iter(build_detection_train_loader(cfg, mapper=lambda d: d["image_id"])))
    assert len(batch) == 3 and set(batch) <= {1, 2, 3, 5, 6, 7}
    test_loader = build_detection_test_loader(cfg, "build_b", mapper=lambda d: d["image_id"])
    assert [b for b in test_loader] == [[0], [1], [2]]


def test_batch_size_must_divide_world_size():
    with pytest.raises(ValueError, match="IMS_PER_BATCH"):
        build_detection_train_loader(_records(2), mapper=lambda d: d, total_batch_size=0)
