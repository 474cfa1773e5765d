"""Turn dataset dicts into model inputs: read images, check sizes, transform annotations,
build ``Instances``, and build the augmentation list from the config.

Conventions: boxes are XYXY absolute pixels after :func:`transform_instance_annotations`;
image sizes are (height, width); ``category_id`` is a contiguous 0-based class id.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, Iterator, List, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from fvcore.transforms.transform import Transform, TransformList
from PIL import Image, ImageOps

from ..structures import BitMasks, Boxes, BoxMode, Instances, PolygonMasks, polygons_to_bitmask, rle_to_bitmask
from ..utils.file_io import PathManager, atomic_write_bytes
from . import transforms as T
from .errors import DataError

__all__ = [
    "read_image",
    "read_image_size",
    "read_sem_seg",
    "read_record_sem_seg",
    "read_panoptic_ids",
    "write_panoptic_ids",
    "check_image_size",
    "transform_instance_annotations",
    "annotations_to_instances",
    "filter_empty_instances",
    "build_augmentation",
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
    rgb = read_image(file_name, format="RGB").astype(np.int64)
    return rgb[:, :, 0] + 256 * rgb[:, :, 1] + 256 * 256 * rgb[:, :, 2]


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


def transform_instance_annotations(
    annotation: Dict[str, Any], transforms: Union[Transform, Sequence[Transform]], image_size: Tuple[int, int]
) -> Dict[str, Any]:
    """Apply ``transforms`` to one instance annotation.

    Args:
        annotation: one entry of a dataset dict's ``annotations``.
        transforms: the transforms applied to the image (a Transform or a list of them).
        image_size: (height, width) of the transformed image.

    Returns:
        A new dict: ``bbox`` as float64 np.ndarray (4,) in XYXY_ABS, clipped to the image, with
        ``bbox_mode`` XYXY_ABS; ``segmentation`` polygons transformed (a list of flat float64
        arrays; polygons cropped away are dropped), or an RLE/np.ndarray mask decoded and
        transformed into a bool HxW np.ndarray.

    Raises:
        DataError: for a segmentation that is neither polygons, RLE nor an array, or a mask that
            does not match the image after transformation.
    """
    if isinstance(transforms, (list, tuple)):
        transforms = TransformList(transforms)
    annotation = dict(annotation)
    bbox = np.asarray(BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS), dtype=np.float64)
    bbox = transforms.apply_box(bbox[None, :])[0]
    height, width = image_size
    annotation["bbox"] = np.clip(bbox, 0, [width, height, width, height])
    annotation["bbox_mode"] = BoxMode.XYXY_ABS

    if "segmentation" in annotation:
        segm = annotation["segmentation"]
        if isinstance(segm, list):
            # copies: transforms modify coordinates in place
            polygons = [p.reshape(-1, 2).copy() for p in _instance_polygons(annotation).polygons[0]]
            annotation["segmentation"] = [p.reshape(-1) for p in transforms.apply_polygons(polygons)]
        else:
            mask = transforms.apply_segmentation(_mask_array(segm, annotation))
            _check_mask_size(mask, image_size, annotation)
            annotation["segmentation"] = mask.astype(bool)
    return annotation


def _mask_array(segm: Any, annotation: Dict[str, Any]) -> np.ndarray:
    """The HxW mask of an RLE dict or array segmentation."""
    if isinstance(segm, np.ndarray):
        return segm
    if not isinstance(segm, dict):
        raise DataError(
            f"Unsupported segmentation of type {type(segm).__name__}: use a list of flat polygons, an RLE dict "
            f"{{'size': [h, w], 'counts': ...}} or an HxW array.",
            record=annotation.get("id"),
        )
    try:
        return rle_to_bitmask(segm)
    except (ValueError, TypeError) as e:
        raise DataError(f"Malformed RLE segmentation: {e}", record=annotation.get("id")) from e


def _check_mask_size(mask: np.ndarray, image_size: Tuple[int, int], annotation: Dict[str, Any]) -> None:
    if tuple(mask.shape) != tuple(image_size):
        raise DataError(
            f"Instance mask has shape {tuple(mask.shape)} but the image is (height, width) = {tuple(image_size)}. "
            f"The RLE 'size' (or mask array) must match the image it annotates; regenerate this annotation.",
            record=annotation.get("id"),
        )


def _category_id(annotation: Dict[str, Any]) -> int:
    cid = annotation.get("category_id")
    if isinstance(cid, (bool, np.bool_)) or not isinstance(cid, (int, np.integer)) or cid < 0:
        raise DataError(
            f"category_id must be an int >= 0 (contiguous class id 0..K-1), got {cid!r}. Map dataset ids to "
            f"contiguous ones with metadata.thing_dataset_id_to_contiguous_id when loading the dataset.",
            record=annotation.get("id"),
        )
    return int(cid)


def _instance_bitmask(annotation: Dict[str, Any], image_size: Tuple[int, int]) -> np.ndarray:
    segm = annotation["segmentation"]
    if isinstance(segm, list):
        try:
            return polygons_to_bitmask(segm, *image_size)
        except ValueError as e:
            raise DataError(f"Invalid polygon segmentation: {e}", record=annotation.get("id")) from e
    mask = _mask_array(segm, annotation)
    _check_mask_size(mask, image_size, annotation)
    return mask.astype(bool)


def _instance_polygons(annotation: Dict[str, Any]) -> PolygonMasks:
    segm = annotation["segmentation"]
    if not isinstance(segm, list):
        raise DataError(
            f"mask_format='polygon' needs polygon segmentations, but this annotation's segmentation is a "
            f"{type(segm).__name__} (RLE or mask). Set INPUT.MASK_FORMAT to 'bitmask'.",
            record=annotation.get("id"),
        )
    try:
        return PolygonMasks([segm])
    except ValueError as e:
        raise DataError(f"Invalid polygon segmentation: {e}", record=annotation.get("id")) from e


def annotations_to_instances(
    annos: List[Dict[str, Any]], image_size: Tuple[int, int], mask_format: str = "polygon"
) -> Instances:
    """Build the training targets of one image.

    Args:
        annos: instance annotations (usually from :func:`transform_instance_annotations`).
        image_size: (height, width).
        mask_format: ``"polygon"`` (gt_masks is a PolygonMasks) or ``"bitmask"`` (a BitMasks
            rasterized from polygons, RLE or HxW arrays).

    Returns:
        Instances with ``gt_boxes`` (Boxes, XYXY_ABS, clipped to the image), ``gt_classes``
        (int64 (N,)) and, when every annotation has a ``segmentation``, ``gt_masks``.

    Raises:
        DataError: for a category_id that is not an int >= 0, a malformed segmentation, a mask
            whose size is not ``image_size``, or RLE masks with ``mask_format="polygon"``.
    """
    if mask_format not in ("polygon", "bitmask"):
        raise ValueError(f"mask_format must be 'polygon' or 'bitmask' (INPUT.MASK_FORMAT), got {mask_format!r}.")
    boxes = [BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS) for a in annos]
    instances = Instances(image_size)
    instances.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    instances.gt_boxes.clip(image_size)
    instances.gt_classes = torch.tensor([_category_id(a) for a in annos], dtype=torch.int64)

    with_segm = ["segmentation" in a for a in annos]
    if annos and any(with_segm) and not all(with_segm):
        raise DataError(
            f"{with_segm.count(False)} of {len(annos)} annotations of this image lack 'segmentation' while the "
            f"others have one. Give every instance a mask, or drop the masks (MODEL.MASK_ON False).",
            record=annos[with_segm.index(False)].get("id"),
        )
    if annos and all(with_segm):
        if mask_format == "polygon":
            instances.gt_masks = PolygonMasks.cat([_instance_polygons(a) for a in annos])
        else:
            masks = np.stack([_instance_bitmask(a, image_size) for a in annos])
            instances.gt_masks = BitMasks(torch.from_numpy(masks))
    return instances


def filter_empty_instances(
    instances: Instances, by_box: bool = True, by_mask: bool = True, box_threshold: float = 1e-5
) -> Instances:
    """Drop instances whose box has a side <= ``box_threshold`` pixels or whose mask is empty."""
    keep = torch.ones(len(instances), dtype=torch.bool)
    if by_box:
        keep &= instances.gt_boxes.nonempty(threshold=box_threshold)
    if by_mask and instances.has("gt_masks"):
        keep &= instances.gt_masks.nonempty()
    return instances[keep]


def build_augmentation(cfg, is_train: bool) -> List[T.Augmentation]:
    """The default augmentations from ``cfg.INPUT``.

    Train: [RandomCrop (if CROP.ENABLED)], ResizeShortestEdge(MIN_SIZE_TRAIN, MAX_SIZE_TRAIN,
    MIN_SIZE_TRAIN_SAMPLING), [RandomFlip (RANDOM_FLIP != "none")], [RandomBrightness,
    RandomContrast (when their range is not (1.0, 1.0))]. Test: ResizeShortestEdge(MIN_SIZE_TEST,
    MAX_SIZE_TEST), or nothing when MIN_SIZE_TEST is 0.
    """
    inp = cfg.INPUT
    if not is_train:
        return [T.ResizeShortestEdge(inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST, "choice")] if inp.MIN_SIZE_TEST > 0 else []
    if inp.RANDOM_FLIP not in ("horizontal", "vertical", "none"):
        raise ValueError(f"INPUT.RANDOM_FLIP must be 'horizontal', 'vertical' or 'none', got {inp.RANDOM_FLIP!r}.")
    augs: List[T.Augmentation] = []
    if inp.CROP.ENABLED:
        augs.append(T.RandomCrop(inp.CROP.TYPE, inp.CROP.SIZE))
    augs.append(T.ResizeShortestEdge(inp.MIN_SIZE_TRAIN, inp.MAX_SIZE_TRAIN, inp.MIN_SIZE_TRAIN_SAMPLING))
    if inp.RANDOM_FLIP != "none":
        augs.append(T.RandomFlip(horizontal=inp.RANDOM_FLIP == "horizontal", vertical=inp.RANDOM_FLIP == "vertical"))
    if tuple(inp.BRIGHTNESS) != (1.0, 1.0):
        augs.append(T.RandomBrightness(*inp.BRIGHTNESS))
    if tuple(inp.CONTRAST) != (1.0, 1.0):
        augs.append(T.RandomContrast(*inp.CONTRAST))
    return augs
