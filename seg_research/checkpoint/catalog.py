"""detectron2's model catalog (``catalog://`` URLs): not provided; ``detectron2://`` weights are resolved by utils.download."""
from ..utils.absent import CAFFE2, absent_names

__getattr__ = absent_names(__name__, {
    "ModelCatalog": CAFFE2,
    "ModelCatalogHandler": CAFFE2,
})
