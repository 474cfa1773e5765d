"""Mask2Former's dataset mappers against upstream's (fixture: make_train_fixtures.py): on one record and
one seed, the same keys, shapes, dtypes and values."""
import copy
import os

import numpy as np
import pytest
import torch

import seg_research.projects.mask2former.data as m2f_data
from seg_research.config import get_cfg
from seg_research.data import MetadataCatalog
from seg_research.data.errors import DataError
from seg_research.projects.deeplab import add_deeplab_config
from seg_research.projects.mask2former import add_maskformer2_config
from seg_research.structures import BoxMode

from .make_train_fixtures import (
    FIXTURES,
    MAPPER_DATASET,
    MAPPER_SEED,
    MAPPERS,
    apply_mapper_settings,
    summarize_mapper_output,
    write_mapper_dataset,
)

#: Mappers whose label maps are resized (nearest) by a different rule than upstream's, so that pixels on
#: exact ties differ (here 2.3% of the labels, 0.5% of the mask pixels): upstream resizes the semantic
#: labels as float64 with torch's legacy "nearest" (source floor(i * in / out)) and COCO panoptic PNGs
#: as RGB with Pillow's NEAREST; the library samples every label map at the pixel centres
#: (floor((i + 0.5) * in / out)). Everything else, the images included, is equal.
RESAMPLED_LABELS = ("MaskFormerSemanticDatasetMapper", "MaskFormerPanopticDatasetMapper",
                    "COCOPanopticNewBaselineDatasetMapper")


@pytest.fixture(scope="module")
def upstream():
    return np.load(os.path.join(FIXTURES, "mappers_parity.npz"))


@pytest.fixture(scope="module")
def cfg():
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    apply_mapper_settings(cfg)
    MetadataCatalog.get(MAPPER_DATASET).set(ignore_label=255)
    return cfg


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_mapper_dataset(str(tmp_path_factory.mktemp("m2f_mappers")), BoxMode.XYWH_ABS)


@pytest.mark.parametrize("name", sorted(MAPPERS))
def test_output_equals_upstreams(name, cfg, records, upstream):
    record = records[MAPPERS[name]]
    before = copy.deepcopy(record)
    mapper = getattr(m2f_data, name)(cfg, True)
    np.random.seed(MAPPER_SEED)
    ours = summarize_mapper_output(mapper(record))
    assert record == before
    expected = {k[len(name) + 1:]: upstream[k] for k in upstream.files if k.startswith(name + "/")}
    assert sorted(ours) == sorted(expected)
    for key, value in expected.items():
        assert ours[key].shape == value.shape and ours[key].dtype == value.dtype, key
        if name in RESAMPLED_LABELS and key in ("sem_seg", "instances.gt_masks"):
            assert (ours[key] == value).mean() >= 0.97, key
        elif name in RESAMPLED_LABELS and key == "instances.gt_boxes":
            np.testing.assert_allclose(ours[key], value, atol=1.0, err_msg=key)
        else:
            np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_semantic_mapper_pads_with_ignore_and_refuses_bad_sizes(cfg, records):
    mapper = m2f_data.MaskFormerSemanticDatasetMapper(cfg, True)
    np.random.seed(0)
    out = mapper(records["semantic"])
    # the 40x44 crop is padded to 48x48: labels 255, image 128 on the padding.
    assert (out["sem_seg"][40:] == 255).all() and (out["image"][:, :, 44:] == 128).all()
    assert out["instances"].gt_masks.sum() == (out["sem_seg"] != 255).sum()
    small = m2f_data.MaskFormerSemanticDatasetMapper(
        is_train=True, augmentations=[], image_format="BGR", ignore_label=255, size_divisibility=32)
    with pytest.raises(ValueError, match="INPUT.SIZE_DIVISIBILITY = 32"):
        small(records["semantic"])
    with pytest.raises(ValueError, match="training records only"):
        m2f_data.MaskFormerSemanticDatasetMapper(
            is_train=False, augmentations=[], image_format="BGR", ignore_label=255, size_divisibility=-1)(
            records["semantic"])


@pytest.mark.parametrize("name", ["MaskFormerPanopticDatasetMapper", "COCOPanopticNewBaselineDatasetMapper"])
def test_panoptic_mappers_need_a_panoptic_record(name, cfg, records):
    mapper = getattr(m2f_data, name)(cfg, True)
    with pytest.raises(DataError, match="pan_seg_file_name.*image.png"):
        mapper(records["semantic"])


def test_lsj_mapper_without_annotations_and_at_test_time(cfg, records):
    mapper = m2f_data.COCOInstanceNewBaselineDatasetMapper(cfg, True)
    np.random.seed(1)
    record = dict(records["instance"], annotations=[])
    out = mapper(record)
    assert out["instances"].gt_masks.shape == (0, 64, 64) and len(out["instances"].gt_boxes) == 0
    test_mapper = m2f_data.COCOInstanceNewBaselineDatasetMapper(
        is_train=False, tfm_gens=[], image_format="RGB")
    out = test_mapper(records["instance"])
    assert "annotations" not in out and "instances" not in out
    assert out["image"].shape == (3, 60, 80) and not out["padding_mask"].any()


def test_color_aug_ssd_is_deterministic_per_draw_and_keeps_geometry():
    image = np.random.default_rng(0).integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    aug = m2f_data.ColorAugSSD("RGB")
    changed = 0
    for seed in range(8):
        np.random.seed(seed)
        tfm = aug.get_transform(image)
        out = tfm.apply_image(image.copy())
        assert out.shape == image.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, tfm.apply_image(image.copy()))
        labels = np.arange(80).reshape(8, 10)
        np.testing.assert_array_equal(tfm.apply_segmentation(labels), labels)
        changed += int(not np.array_equal(out, image))
    assert changed >= 6
    with pytest.raises(ValueError, match="INPUT.FORMAT"):
        m2f_data.ColorAugSSD("L")


def test_instance_mapper_keeps_upstreams_empty_instances(cfg, records):
    # Upstream keeps an instance cropped away (its mask is empty); so do we.
    mapper = m2f_data.MaskFormerInstanceDatasetMapper(cfg, True)
    counts = set()
    for seed in range(6):
        np.random.seed(seed)
        out = mapper(records["instance"])
        assert out["instances"].gt_classes.tolist() == [2, 3, 0]
        counts.add(int((out["instances"].gt_masks.flatten(1).sum(1) == 0).sum()))
        assert out["instances"].gt_masks.dtype == torch.bool
    assert counts - {0}
