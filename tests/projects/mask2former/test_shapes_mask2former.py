"""The Shapes Mask2Former config and seg_research.projects.mask2former.train_net: a tiny version trains 2
iterations and reports PQ, mask AP and mIoU of the one model on shapes_val_panoptic_with_sem_seg, whose
semantic labels are the panoptic ground truth's classes."""
import json
from pathlib import Path

import numpy as np
import pytest

from seg_research.config import get_cfg
from seg_research.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from seg_research.data.image_io import read_panoptic_ids, read_sem_seg
from seg_research.engine import default_argument_parser
from seg_research.engine.train_net import train_net_main
from seg_research.evaluation import COCOEvaluator, COCOPanopticEvaluator, DatasetEvaluators, SemSegEvaluator
from seg_research.projects.deeplab import add_deeplab_config
from seg_research.projects.mask2former import (
    InstanceSegEvaluator,
    MaskFormerPanopticDatasetMapper,
    add_maskformer2_config,
)
from seg_research.projects.mask2former.train_net import ADD_CONFIG_FNS, Trainer, build_evaluator

ROOT = Path(__file__).resolve().parents[3]
CONFIG = str(ROOT / "configs" / "Shapes" / "mask2former_R18_bs4_demo.yaml")
# At the tests' 64 px Shapes: a model of a few thousand parameters per part.
TINY = ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64",
        "INPUT.MAX_SIZE_TEST", "64", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
        "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "8",
        "MODEL.MASK_FORMER.DEC_LAYERS", "4", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "64", "SOLVER.MAX_ITER", "2"]


def _cfg(*opts):
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list([*TINY, *opts])
    return cfg


def test_panoptic_with_sem_seg_labels_are_the_panoptic_classes():
    records = DatasetCatalog.get("shapes_val_panoptic_with_sem_seg")
    assert MetadataCatalog.get("shapes_val_panoptic_with_sem_seg").evaluator_type == "coco_panoptic_seg"
    for record in records[:3]:
        ids, labels = read_panoptic_ids(record["pan_seg_file_name"]), read_sem_seg(record["sem_seg_file_name"])
        expected = np.full(ids.shape, 255)
        for segment in record["segments_info"]:
            expected[ids == segment["id"]] = segment["category_id"]  # contiguous: things 0..3, stuff 4..6
        assert (labels == expected).all()


def test_evaluators_of_the_three_outputs(tmp_path):
    evaluator = build_evaluator(_cfg(), "shapes_val_panoptic_with_sem_seg", str(tmp_path))
    assert isinstance(evaluator, DatasetEvaluators)
    assert [type(e) for e in evaluator._evaluators] == [SemSegEvaluator, COCOPanopticEvaluator, COCOEvaluator]
    only_pq = _cfg("MODEL.MASK_FORMER.TEST.SEMANTIC_ON", "False", "MODEL.MASK_FORMER.TEST.INSTANCE_ON", "False")
    assert isinstance(build_evaluator(only_pq, "shapes_val_panoptic_with_sem_seg", str(tmp_path)), COCOPanopticEvaluator)
    assert type(build_evaluator(_cfg(), "shapes_val", str(tmp_path))) is COCOEvaluator
    # mapillary_vistas_panoptic_seg with INSTANCE_ON: upstream's InstanceSegEvaluator (thing ids among all classes)
    metadata = MetadataCatalog.get("mapillary_vistas_panoptic_val")
    assert metadata.evaluator_type == "mapillary_vistas_panoptic_seg"
    cfg = _cfg("MODEL.MASK_FORMER.TEST.SEMANTIC_ON", "False", "MODEL.MASK_FORMER.TEST.PANOPTIC_ON", "False")
    assert type(build_evaluator(cfg, "mapillary_vistas_panoptic_val", str(tmp_path))) is InstanceSegEvaluator


def test_shapes_config_trains_and_reports_pq_ap_miou(tmp_path):
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *TINY, "OUTPUT_DIR", str(tmp_path)])
    results = train_net_main(args, ADD_CONFIG_FNS, Trainer)
    assert {"panoptic_seg", "segm", "sem_seg"} <= set(results)
    written = json.loads((tmp_path / "inference" / "shapes_val_panoptic_with_sem_seg" / "results.json").read_text())
    assert written["panoptic_seg"]["PQ"] == pytest.approx(results["panoptic_seg"]["PQ"])
    assert (tmp_path / "model_final.pth").exists()


class _UpstreamStyleTrainer(Trainer):
    """build_train_loader(cls, cfg) as detectron2 projects' train_net.py override it."""

    calls = []

    @classmethod
    def build_train_loader(cls, cfg):
        cls.calls.append(cfg.INPUT.DATASET_MAPPER_NAME)
        return build_detection_train_loader(cfg, mapper=MaskFormerPanopticDatasetMapper(cfg, True))


def test_trainer_with_detectron2_build_train_loader_signature(tmp_path):
    cfg = _cfg("OUTPUT_DIR", str(tmp_path), "DATASETS.TEST", "()")
    trainer = _UpstreamStyleTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert _UpstreamStyleTrainer.calls == ["mask_former_panoptic"]  # called with the config alone, once
    assert (tmp_path / "model_final.pth").exists()
