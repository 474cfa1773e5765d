from ..utils.absent import absent_names

# datasets registers the builtin datasets on import, in every process; transforms is detectron2's
# `from <pkg>.data import transforms as T`.
from . import datasets, samplers, transforms  # noqa: F401
from .build import ABSENT_NAMES as _BUILD_ABSENT
from .build import (
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
    print_instances_class_histogram,
)
from .catalog import DatasetCatalog, DatasetNotRegisteredError, Metadata, MetadataCatalog
from .common import ABSENT_NAMES as _COMMON_ABSENT
from .common import DatasetFromList, MapDataset
from .errors import DataError
from .mapper import DatasetMapper

__all__ = [
    "DatasetCatalog", "MetadataCatalog", "Metadata", "DatasetNotRegisteredError", "DataError",
    "build_batch_data_loader", "build_detection_test_loader", "build_detection_train_loader",
    "get_detection_dataset_dicts", "print_instances_class_histogram", "DatasetFromList", "MapDataset", "DatasetMapper",
]

__getattr__ = absent_names(__name__, {**_BUILD_ABSENT, **_COMMON_ABSENT})
