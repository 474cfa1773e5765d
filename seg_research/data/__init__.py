from .catalog import DatasetCatalog, DatasetNotRegisteredError, Metadata, MetadataCatalog
from .errors import DataError

__all__ = ["DatasetCatalog", "MetadataCatalog", "Metadata", "DatasetNotRegisteredError", "DataError"]
