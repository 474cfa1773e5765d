from .catalog import DatasetCatalog, DatasetNotRegisteredError, Metadata, MetadataCatalog
from .errors import DataError
from . import datasets  # noqa: F401  (registers the builtin datasets on import, in every process)

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "DatasetNotRegisteredError", "DataError"]
