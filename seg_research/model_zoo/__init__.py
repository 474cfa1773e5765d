"""detectron2's ``model_zoo`` API: configs by detectron2's names and their published weights.

    from seg_research import model_zoo
    cfg_file = model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    model = model_zoo.get("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", trained=True)

Mask2Former's configs and official weights (CC BY-NC 4.0) by upstream's names:
``model_zoo.get("coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml", trained=True)``.
"""
from .model_zoo import (
    MASK2FORMER_URL_PREFIX,
    MASK2FORMER_ZOO_URLS,
    MODEL_ZOO_URLS,
    PROJECT_CONFIGS,
    get,
    get_checkpoint_url,
    get_config,
    get_config_file,
    list_configs,
)

__all__ = ["MASK2FORMER_URL_PREFIX", "MASK2FORMER_ZOO_URLS", "MODEL_ZOO_URLS", "PROJECT_CONFIGS", "get", "get_checkpoint_url", "get_config", "get_config_file", "list_configs"]
