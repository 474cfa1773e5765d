"""Category tables of the builtin datasets, at detectron2's ``data.datasets.builtin_meta`` path.

Cityscapes and ADE20K tables are those of their loaders; COCO's categories are read from the
dataset's own json files when registered, so no table is kept here.
"""
from ...utils.absent import KEYPOINTS, absent_names
from .ade20k import ADE20K_SEM_SEG_CLASSES
from .cityscapes_panoptic import CITYSCAPES_PANOPTIC_CATEGORIES

#: the 150 ADE20K (SceneParsing) class names, in label order 0..149
ADE20K_SEM_SEG_CATEGORIES = list(ADE20K_SEM_SEG_CLASSES)
#: Cityscapes' scored categories: ``{"id", "name", "color", "isthing"}`` (label ids, as in its panoptic json)
CITYSCAPES_CATEGORIES = list(CITYSCAPES_PANOPTIC_CATEGORIES)

__all__ = ["ADE20K_SEM_SEG_CATEGORIES", "CITYSCAPES_CATEGORIES"]

__getattr__ = absent_names(__name__, {
    "COCO_CATEGORIES": "COCO's categories are read from its json files when registered: use "
                       "MetadataCatalog.get('coco_2017_val_panoptic').thing_classes / stuff_classes (and _colors, "
                       "thing_dataset_id_to_contiguous_id), or the 'categories' of panoptic_val2017.json.",
    "COCO_PERSON_KEYPOINT_NAMES": KEYPOINTS,
    "COCO_PERSON_KEYPOINT_FLIP_MAP": KEYPOINTS,
    "KEYPOINT_CONNECTION_RULES": KEYPOINTS,
})
