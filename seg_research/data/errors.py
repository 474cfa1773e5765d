"""The error raised for bad input data (:class:`~seg_research.utils.errors.DataError`, defined in utils so
that every layer may raise it); this module keeps its detectron2-style import path."""
from ..utils.errors import DataError

__all__ = ["DataError"]
