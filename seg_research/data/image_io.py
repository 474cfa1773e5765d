"""Read and write the files a dataset dict points at: images (EXIF orientation applied), semantic
label maps, COCO panoptic id PNGs; and check an image against its record's height/width.

Every failure is a :class:`~seg_research.data.errors.DataError` naming the file (and record) at
fault and saying what to do.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, Iterator, Tuple

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..utils.file_io import PathManager, atomic_write_bytes
from .errors import DataError

__all__ = [
    "read_image",
    "read_image_size",
    "read_sem_seg",
    "read_record_sem_seg",
    "read_panoptic_ids",
    "write_panoptic_ids",
    "check_image_size",
]

_IMAGE_FORMATS = ("BGR", "RGB", "L")
#: COCO panoptic PNGs store a segment id as ``R + 256 * G + 256**2 * B``: ids below 2**24.
_PANOPTIC_ID_LIMIT = 256**3


def _check_exists(file_name: str, what: str) -> None:
    if not PathManager.exists(file_name):
        raise DataError(
            f"{what} does not exist. Check the dataset root ($SEG_DATASETS, default ./datasets) and the "
            f"path in the dataset dict, or re-run the dataset's prepare script.",
            file_name=file_name,
        )


def _empty_file_error(file_name: str, what: str) -> DataError:
    return DataError(
        f"{what} is empty (0 bytes): a download or extraction was probably interrupted. "
        f"Re-download or re-extract it.",
        file_name=file_name,
    )


@contextlib.contextmanager
def _decoding(file_name: str, what: str) -> Iterator[None]:
    """Turn any failure of Pillow on ``file_name`` (its decoders raise many exception types on
    corrupt input, a decompression bomb included) into a DataError saying what to do."""
    try:
        yield
    except Exception as e:
        raise DataError(
            f"{what} cannot be decoded ({type(e).__name__}: {e}); it is corrupt, truncated or not an image. "
            f"Re-download it, or remove its record from the dataset.",
            file_name=file_name,
        ) from e


def _open_image(file_name: str, what: str) -> Image.Image:
    """Open and fully decode an image file with Pillow, or raise a DataError saying what to do."""
    _check_exists(file_name, what)
    with PathManager.open(file_name, "rb") as f:
        data = f.read()
    if len(data) == 0:
        raise _empty_file_error(file_name, what)
    with _decoding(file_name, what):
        image = Image.open(io.BytesIO(data))
        image.load()
    return image


def read_image_size(file_name: str) -> Tuple[int, int]:
    """``(height, width)`` of an image from its header (pixels not decoded, EXIF orientation not applied).

    Raises:
        DataError: naming the file when it is missing, empty or not a readable image.
    """
    what = "Image file"
    _check_exists(file_name, what)
    with PathManager.open(file_name, "rb") as f:
        if not f.read(1):
            raise _empty_file_error(file_name, what)
        f.seek(0)
        with _decoding(file_name, what):
            width, height = Image.open(f).size
    return height, width


def read_image(file_name: str, format: str = "BGR") -> np.ndarray:
    """Read an image with Pillow, applying its EXIF orientation (as photo viewers do).

    Args:
        file_name: local path or iopath URL.
        format: ``"BGR"`` or ``"RGB"`` (HxWx3) or ``"L"`` (grayscale, HxWx1).

    Returns:
        uint8 np.ndarray of shape HxWxC, C-contiguous; (H, W) are those after EXIF rotation.

    Raises:
        DataError: naming the file when it is missing, empty or cannot be decoded.
    """
    if format not in _IMAGE_FORMATS:
        raise ValueError(f"read_image: format must be one of {_IMAGE_FORMATS} (INPUT.FORMAT), got {format!r}.")
    image = ImageOps.exif_transpose(_open_image(file_name, "Image file"))
    if format == "L":
        return np.array(image.convert("L"))[:, :, None]
    array = np.array(image.convert("RGB"))
    return np.ascontiguousarray(array[:, :, ::-1]) if format == "BGR" else array


def read_sem_seg(file_name: str, binary: bool = False) -> np.ndarray:
    """Read a semantic segmentation file.

    Args:
        file_name: local path or iopath URL.
        binary: the file is a foreground mask rather than class ids, in any Pillow mode
            (1-bit, grayscale, palette, RGB): label 1 where any RGB channel is > 0, 0
            elsewhere (alpha ignored). Used by datasets that ship masks (PH2, MADS).

    Returns:
        HxW integer np.ndarray: with ``binary``, uint8 0/1; otherwise the class ids as stored
        (uint8 for "L"/"P" PNGs, wider for 16/32-bit ones, 0/1 for 1-bit files), 255 = ignore.

    Raises:
        DataError: naming the file when it is missing, empty, corrupt or (without ``binary``)
            not single-channel.
    """
    image = _open_image(file_name, "Semantic segmentation file")
    if binary:
        return np.asarray(image.convert("RGB")).any(axis=2).astype(np.uint8)
    array = np.array(image)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"Semantic segmentation file must be a single-channel image of integer class ids (PNG mode 'L' or "
            f"'P'), got an array of shape {array.shape} and dtype {array.dtype}. Convert color-coded masks to "
            f"class ids (e.g. with the dataset's prepare script), or, for a binary foreground mask, set "
            f"'sem_seg_binary': True in the dataset dict.",
            file_name=file_name,
        )
    return array


def read_record_sem_seg(dataset_dict: Dict[str, Any]) -> np.ndarray:
    """The semantic labels of a dataset dict, as used by the mapper and the evaluator alike.

    Reads ``dataset_dict["sem_seg_file_name"]`` with :func:`read_sem_seg`, as a binary
    foreground mask (labels 0/1) when the dict has ``"sem_seg_binary": True``. A dict whose
    file stores the dataset's own label values (ADE20K's 0 = other, 1..150; Cityscapes'
    labelIds) has ``"sem_seg_label_map"``: a 256-entry uint8 array, label = map[stored value].

    Returns:
        HxW integer np.ndarray of class ids (255 = ignore).

    Raises:
        DataError: naming the file when ``sem_seg_label_map`` is given and the file is not 8-bit.
    """
    file_name = dataset_dict["sem_seg_file_name"]
    labels = read_sem_seg(file_name, binary=bool(dataset_dict.get("sem_seg_binary", False)))
    label_map = dataset_dict.get("sem_seg_label_map")
    if label_map is None:
        return labels
    if labels.dtype != np.uint8:
        raise DataError(f"'sem_seg_label_map' maps 8-bit label values, but the file holds {labels.dtype} values. "
                        f"Use the dataset's original 8-bit label PNGs.", file_name=file_name)
    return np.asarray(label_map, dtype=np.uint8)[labels]


def read_panoptic_ids(file_name: str) -> np.ndarray:
    """Segment ids of a COCO panoptic PNG: ``R + 256 * G + 256**2 * B`` per pixel (0 = void).

    Returns:
        int64 np.ndarray (H, W).

    Raises:
        DataError: naming the file when it is missing or cannot be decoded.
    """
    image = _open_image(file_name, "Image file")
    ImageOps.exif_transpose(image, in_place=True)  # as read_image: PNGs may carry an EXIF orientation
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    # Pillow keeps an RGB pixel in 4 bytes (R, G, B, padding): its "RGBX" raw mode hands them over
    # as they are, and read as one little-endian uint32 they are R + 256 G + 256**2 B + 256**3 X.
    packed = np.frombuffer(image.tobytes("raw", "RGBX"), dtype="<u4").reshape(height, width)
    return np.bitwise_and(packed, _PANOPTIC_ID_LIMIT - 1, dtype=np.int64)


def write_panoptic_ids(file_name: str, ids: np.ndarray) -> None:
    """Write segment ids as a COCO panoptic PNG (the inverse of :func:`read_panoptic_ids`).

    Args:
        file_name: local path of the ``.png`` to write (atomically; its folder is created).
        ids: (H, W) integer np.ndarray of segment ids in ``[0, 2**24)``, 0 = void; stored as
            ``R = id % 256, G = id // 256 % 256, B = id // 256**2`` (lossless RGB PNG).

    Raises:
        ValueError: for ids outside ``[0, 2**24)``, which the format cannot store.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"write_panoptic_ids: ids must be an (H, W) integer array, got shape {ids.shape} and "
                         f"dtype {ids.dtype}.")
    if ids.size and (ids.min() < 0 or ids.max() >= _PANOPTIC_ID_LIMIT):
        raise ValueError(f"write_panoptic_ids: segment ids must be in [0, 2**24) to fit a COCO panoptic PNG, got "
                         f"[{ids.min()}, {ids.max()}] for '{file_name}'. Renumber the segments (e.g. 1..N).")
    ids = ids.astype(np.int64)
    bgr = np.stack([ids // 256**2, ids // 256 % 256, ids % 256], axis=-1).astype(np.uint8)
    ok, png = cv2.imencode(".png", bgr)
    if not ok:
        raise OSError(f"OpenCV could not encode the panoptic PNG '{file_name}'.")
    atomic_write_bytes(file_name, png.tobytes())


def check_image_size(dataset_dict: Dict[str, Any], image: np.ndarray) -> None:
    """Check the image against the record's ``height``/``width``; fill them in when absent.

    Raises:
        DataError: naming ``file_name`` and ``image_id``, with the expected and actual (h, w);
            when the two are swapped it points at EXIF rotation.
    """
    actual = (int(image.shape[0]), int(image.shape[1]))
    expected = (dataset_dict.get("height", actual[0]), dataset_dict.get("width", actual[1]))
    if tuple(expected) != actual:
        message = (
            f"Image size mismatch: the dataset dict says (height, width) = {tuple(expected)} but the image "
            f"read is {actual}."
        )
        if tuple(expected) == actual[::-1]:
            message += (
                " The sizes are swapped: the file has an EXIF orientation tag, which read_image applies, while "
                "the registered height/width describe the unrotated pixels. Register height/width as read by "
                "seg_research.data.detection_utils.read_image, or strip the EXIF orientation from the file."
            )
        else:
            message += " Fix the record's height/width, or replace the file with the one the record describes."
        raise DataError(message, file_name=dataset_dict.get("file_name"), record=dataset_dict.get("image_id"))
    dataset_dict.setdefault("height", actual[0])
    dataset_dict.setdefault("width", actual[1])
