"""COCO run-length encoding: a well-formedness check that runs before pycocotools reads an RLE
(pycocotools trusts its input), decoding to and encoding from dense (height, width) masks."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple, Union

import numpy as np
import pycocotools.mask as mask_util
import torch

__all__ = ["check_rle", "rle_to_bitmask", "bitmask_to_rle"]


def _compressed_counts(counts: bytes) -> List[int]:
    """Run lengths of a compressed COCO RLE string (pycocotools' 6-bit-per-character delta code).

    Raises:
        ValueError: for a character outside the code's range or a truncated last value.
    """
    values: List[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("its compressed 'counts' string ends in the middle of a value (truncated)")
            code = counts[position] - 48
            if not 0 <= code < 64:
                raise ValueError(f"its compressed 'counts' string has the character {chr(counts[position])!r}, "
                                 "outside the RLE alphabet '0'..'o'")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            shift += 5
            position += 1
            if not more and code & 0x10:
                value -= 1 << shift  # sign extension
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    return values


def check_rle(rle: Any) -> Tuple[int, int]:
    """Check that ``rle`` is a well-formed COCO RLE before pycocotools reads it.

    pycocotools trusts its input: run lengths that do not add up to ``height * width``
    make it write outside its buffers (the process dies). This checks the dict, the size
    and every run length without decoding the mask.

    Args:
        rle: ``{"size": [height, width], "counts": str | bytes (compressed) or list of int
            (uncompressed run lengths, column-major, starting with zeros)}``.

    Returns:
        ``(height, width)``.

    Raises:
        ValueError: saying what is malformed.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(
            "An RLE segmentation must be a dict {'size': [height, width], 'counts': ...}; "
            f"got {type(rle).__name__} with keys {sorted(map(str, rle)) if isinstance(rle, dict) else 'n/a'}."
        )
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in size)):
        raise ValueError(f"RLE 'size' must be [height, width], two integers >= 0; got {size!r}.")
    height, width = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, str):
        if not counts.isascii():
            raise ValueError("Malformed compressed RLE: its 'counts' string has non-ASCII characters, outside the "
                             "RLE alphabet '0'..'o'.")
        counts = counts.encode("ascii")
    if isinstance(counts, bytes):
        try:
            runs = _compressed_counts(counts)
        except ValueError as e:
            raise ValueError(f"Malformed compressed RLE: {e}.") from None
    elif isinstance(counts, list) and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in counts):
        runs = [int(c) for c in counts]
    else:
        raise ValueError("RLE 'counts' must be a compressed string/bytes or a list of integer run lengths; got "
                         f"{type(counts).__name__}{' with non-integer entries' if isinstance(counts, list) else ''}.")
    if any(c < 0 for c in runs) or sum(runs) != height * width:
        raise ValueError(
            f"RLE counts {'have a negative run length' if any(c < 0 for c in runs) else f'sum to {sum(runs)}'} but "
            f"size {height}x{width} has {height * width} pixels; the 'size' or 'counts' of this segmentation is wrong."
        )
    return height, width


def rle_to_bitmask(rle: Dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE ``{"size": [height, width], "counts": ...}`` into a bool (height, width) array.

    ``counts`` may be compressed (``str`` or ``bytes``, as written by pycocotools) or
    uncompressed (a list of run lengths starting with a run of zeros, column-major).

    Raises:
        ValueError: for a malformed RLE (:func:`check_rle`).
    """
    height, width = check_rle(rle)
    if isinstance(rle["counts"], list):
        rle = mask_util.frPyObjects(rle, height, width)
    return mask_util.decode(rle).astype(bool)


def bitmask_to_rle(mask: Union[np.ndarray, torch.Tensor]) -> Dict[str, Any]:
    """Encode a (height, width) mask (nonzero = foreground) as a compressed COCO RLE.

    Returns:
        ``{"size": [height, width], "counts": str}``; ``counts`` is utf-8 text, so the dict is
        JSON-serialisable and accepted by :func:`rle_to_bitmask` and pycocotools.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if mask.ndim != 2:
        raise ValueError(f"bitmask_to_rle expects one (height, width) mask, got shape {mask.shape}.")
    rle = mask_util.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle
