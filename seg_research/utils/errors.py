"""The errors every layer raises, kept at the bottom so that each layer may raise them: :class:`DataError`
(bad input data: it names the file and the record at fault) and :class:`ConfigError` (a bad config key or
value). Public at their detectron2-style homes too: ``seg_research.data.errors.DataError``,
``seg_research.config.ConfigError``."""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["ConfigError", "DataError"]


class ConfigError(KeyError, ValueError):
    """A config key or value is invalid. Subclasses KeyError so yacs users' handlers still work."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(ValueError):
    """Bad dataset input (missing/corrupt image, malformed annotation, wrong size, ...).

    Args:
        message: what is wrong and what to do about it.
        file_name: the file at fault (image, mask or json), if any.
        record: an identifier of the record at fault (``image_id``, row number, ...), if any.
    """

    def __init__(self, message: str, file_name: Optional[str] = None, record: Any = None) -> None:
        self.message = message
        self.file_name = file_name
        self.record = record
        where = []
        if file_name is not None:
            where.append(f"file '{file_name}'")
        if record is not None:
            where.append(f"record {record!r}")
        full = f"{message} [{', '.join(where)}]" if where else message
        super().__init__(full)

    def with_location(self, file_name: Optional[str] = None, record: Any = None) -> "DataError":
        """This error, naming ``file_name`` / ``record`` where it names none (e.g. the image of
        an annotation whose check only knew the annotation)."""
        return DataError(self.message, file_name=self.file_name if self.file_name is not None else file_name,
                         record=self.record if self.record is not None else record)
