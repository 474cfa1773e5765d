"""detectron2's ``data.dataset_mapper`` path; the mapper lives in :mod:`seg_research.data.mapper`."""
from .mapper import DatasetMapper

__all__ = ["DatasetMapper"]
