"""Write ``d2_zoo_layouts.json.gz``: detectron2 v0.6's parameter counts and state_dict layout
(key -> shape) of every model-zoo config seg_research ships, built by detectron2 itself.

Run with the measurement-only detectron2 of ``../shared/anchors`` (never a dependency), from a
folder outside the repository::

    /work/anchor_venv/bin/python tests/model_zoo/make_d2_zoo_layouts.py tests/model_zoo/d2_zoo_layouts.json.gz
"""
import gzip
import json
import sys

from detectron2 import model_zoo
from detectron2.config import get_cfg
from detectron2.modeling import build_model

CONFIGS = [
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x", "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_1x",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x", "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_C4_3x", "COCO-InstanceSegmentation/mask_rcnn_R_101_DC5_3x",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x", "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x",
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_1x", "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x",
    "COCO-PanopticSegmentation/panoptic_fpn_R_101_3x", "Misc/semantic_R_50_FPN_1x", "Cityscapes/mask_rcnn_R_50_FPN",
]


def main(out_file: str) -> None:
    layouts = {}
    for name in CONFIGS:
        cfg = get_cfg()
        cfg.merge_from_file(model_zoo.get_config_file(name + ".yaml"))
        cfg.MODEL.DEVICE = "cpu"
        model = build_model(cfg)
        layouts[name] = {
            "num_params": sum(p.numel() for p in model.parameters()),
            "num_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
        print(name, layouts[name]["num_params"], flush=True)
    with gzip.open(out_file, "wt") as f:
        json.dump(layouts, f, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
