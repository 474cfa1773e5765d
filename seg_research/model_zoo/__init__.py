"""detectron2's ``model_zoo`` API: configs by detectron2's names and their published weights.

    from seg_research import model_zoo
    cfg_file = model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    model = model_zoo.get("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", trained=True)
"""
from .model_zoo import MODEL_ZOO_URLS, get, get_checkpoint_url, get_config, get_config_file, list_configs

__all__ = ["MODEL_ZOO_URLS", "get", "get_checkpoint_url", "get_config", "get_config_file", "list_configs"]
