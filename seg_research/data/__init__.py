from ..utils.absent import absent_names

# datasets registers the builtin datasets on import, in every process; transforms is detectron2's
# `from <pkg>.data import transforms as T`.
from . import datasets, samplers, transforms  # noqa: F401
from .build import (
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from .catalog import DatasetCatalog, DatasetNotRegisteredError, Metadata, MetadataCatalog
from .common import DatasetFromList, MapDataset
from .errors import DataError
from .mapper import DatasetMapper

__all__ = [
    "DatasetCatalog", "MetadataCatalog", "Metadata", "DatasetNotRegisteredError", "DataError",
    "build_batch_data_loader", "build_detection_test_loader", "build_detection_train_loader",
    "get_detection_dataset_dicts", "DatasetFromList", "MapDataset", "DatasetMapper",
]

__getattr__ = absent_names(__name__, {
    "ToIterableDataset": "not needed: build_detection_train_loader takes the list of dicts (or DatasetFromList) and "
                         "a sampler from data.samplers directly.",
    "load_proposals_into_dataset": "precomputed proposals are not supported (no MODEL.LOAD_PROPOSALS); the RPN "
                                   "computes proposals.",
    "print_instances_class_histogram": "not provided; count `category_id` over "
                                       "DatasetCatalog.get(name)[i]['annotations'] with collections.Counter.",
})
