"""Registration of the builtin datasets at import (so spawned worker processes have them too).

Shapes (generated on first use under ``get_datasets_root()/shapes``):

* ``shapes_{train,val}``: instances (COCO json), ``evaluator_type="coco"``;
* ``shapes_{train,val}_sem_seg``: semantic labels over the 7 classes (things 0..3, stuff
  4..6, 255 ignore), ``evaluator_type="sem_seg"``;
* ``shapes_{train,val}_panoptic``: COCO panoptic, standard metadata convention;
* ``shapes_{train,val}_panoptic_separated``: instances + stuff labels (0 = things,
  1..3 = sky/ground/water) + panoptic, separated convention;
* ``shapes_{train,val}_panoptic_with_sem_seg``: the ``_panoptic`` records with ``sem_seg_file_name``
  (Mask2Former's evaluation set: PQ, AP and mIoU from one dataset).

Metadata is set here without touching the disk; a split is generated when its dataset
dicts are first requested. Split sizes come from ``SEG_SHAPES_TRAIN`` (default 400),
``SEG_SHAPES_VAL`` (default 100) and ``SEG_SHAPES_SIZE`` (``"256"`` or ``"HxW"``,
default 256x256), read at generation time.

PH2 (:mod:`.ph2`, files under ``get_datasets_root()/PH2Dataset``): ``ph2_{train,val,test}``
(instances) and ``ph2_{train,val,test}_sem_seg``. MADS (:mod:`.mads`, under
``get_datasets_root()/MADS``): ``mads_{train,val,test}`` and ``mads_{train,val,test}_sem_seg``.
Their loaders check the files only when called.

PASCAL VOC 2012 segmentation (:mod:`.voc2012_sem_seg`, under ``VOCdevkit/VOC2012``):
``voc_2012_sem_seg_{train,val,trainval,train_aug}``. ADE20K (:mod:`.ade20k`, under
``ADEChallengeData2016``): ``ade20k_sem_seg_{train,val}``. Cityscapes fine (:mod:`.cityscapes`,
:mod:`.cityscapes_panoptic`, under ``cityscapes``): ``cityscapes_fine_{sem_seg,instance_seg}_{train,val,test}``
and ``cityscapes_fine_panoptic_{train,val}``. All in the datasets' released layouts.

Mask2Former's (files in the downloads' layouts, see datasets/README.md): ADE20K panoptic and instance
(:mod:`.ade20k_panoptic`, under ``ADEChallengeData2016``): ``ade20k_panoptic_{train,val}`` and
``ade20k_instance_{train,val}``. Mapillary Vistas v1.2 (:mod:`.mapillary_vistas`, under ``mapillary_vistas``):
``mapillary_vistas_sem_seg_{train,val}`` and ``mapillary_vistas_panoptic_{train,val}``. COCO-Stuff-10k and
ADE20K-full in the converted layouts of MaskFormer's scripts (:mod:`.mask2former_sem_seg`):
``coco_2017_{train,test}_stuff_10k_sem_seg`` and ``ade20k_full_sem_seg_{train,val}``.

PASCAL VOC detection (:mod:`.pascal_voc`, under ``VOC2007``/``VOC2012`` or ``VOCdevkit/VOC20xx``):
detectron2's ``voc_2007_{trainval,train,val,test}`` and ``voc_2012_{trainval,train,val}``.

COCO 2017 instances (files under ``get_datasets_root()/coco``): ``coco_2017_{train,val}`` with
``annotations/instances_{train,val}2017.json`` and images in ``{train,val}2017/``; class
names and the id mapping are read from the json when the dataset is first loaded.

COCO 2017 panoptic (same root): ``coco_2017_{train,val}_panoptic`` (standard metadata
convention) and ``coco_2017_{train,val}_panoptic_separated`` (separated, for PanopticFPN) with
``annotations/panoptic_{train,val}2017.json``, PNGs in ``panoptic_{train,val}2017/``, the
instances json above and, for ``_separated``, the stuff PNGs in ``panoptic_stuff_{train,val}2017/``
(made by ``datasets/prepare_panoptic_fpn.py``). The 133 categories (names, ids, isthing) are
read from the panoptic json when the dataset is first loaded; until then the metadata has the
paths, ``evaluator_type`` and labels but no class keys. Mask2Former's
``coco_2017_{train,val}_panoptic_with_sem_seg`` add ``sem_seg_file_name`` from
``panoptic_semseg_{train,val}2017/`` (:func:`register_all_coco_panoptic_with_sem_seg`).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, Tuple

from seg_research.data.catalog import DatasetCatalog, MetadataCatalog
from seg_research.data.errors import DataError

from ...utils.absent import LVIS, absent_names
from .ade20k import register_all_ade20k
from .ade20k_panoptic import register_all_ade20k_panoptic
from .cityscapes import register_all_cityscapes
from .cityscapes_panoptic import register_all_cityscapes_panoptic
from .coco import load_sem_seg, read_json, register_coco_instances
from .coco_panoptic import (
    load_coco_panoptic_json,
    load_separated,
    panoptic_metadata,
    register_coco_panoptic,
    register_coco_panoptic_separated,
)
from .mads import register_all_mads
from .mapillary_vistas import register_all_mapillary_vistas
from .mask2former_sem_seg import register_all_mask2former_sem_seg
from .panoptic_sem_seg import load_panoptic_with_sem_seg
from .pascal_voc import register_all_pascal_voc
from .paths import check_dirs_exist, check_files_exist
from .ph2 import register_all_ph2
from .shapes import CATEGORIES, generate_shapes
from .voc2012_sem_seg import register_all_voc2012_sem_seg

__all__ = ["get_datasets_root", "shapes_split_params", "register_all_shapes", "register_all_coco",
           "register_all_coco_panoptic", "register_all_coco_panoptic_with_sem_seg"]

#: split -> (env var with its number of images, default number of images, seed)
_SHAPES_SPLITS = {"train": ("SEG_SHAPES_TRAIN", 400, 0), "val": ("SEG_SHAPES_VAL", 100, 1)}
_SHAPES_SIZE_ENV, _SHAPES_DEFAULT_SIZE = "SEG_SHAPES_SIZE", (256, 256)


def get_datasets_root() -> str:
    """The folder holding all datasets: ``$SEG_DATASETS`` if set, else ``./datasets``."""
    return os.path.expanduser(os.environ.get("SEG_DATASETS", "./datasets"))


def _positive_ints(env: str, text: str, count: int) -> List[int]:
    try:
        values = [int(v) for v in text.lower().split("x")]
    except ValueError:
        values = []
    if len(values) not in (1, count) or min(values) <= 0:
        raise ValueError(f"Environment variable {env}={text!r} is invalid: expected a positive integer"
                         f"{' or HxW' if count == 2 else ''}. Fix or unset it.")
    return values * (count // len(values))


def shapes_split_params(split: str) -> Tuple[int, Tuple[int, int], int]:
    """``(num_images, (height, width), seed)`` of a builtin Shapes split, after environment overrides."""
    env, default_count, seed = _SHAPES_SPLITS[split]
    count = _positive_ints(env, os.environ[env], 1)[0] if env in os.environ else default_count
    size = _SHAPES_DEFAULT_SIZE
    if _SHAPES_SIZE_ENV in os.environ:
        height, width = _positive_ints(_SHAPES_SIZE_ENV, os.environ[_SHAPES_SIZE_ENV], 2)
        size = (height, width)
    return count, size, seed


def _generate_then_load(root: str, split: str, load: Callable[[], List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    num_images, size, seed = shapes_split_params(split)
    generate_shapes(root, split, num_images, size, seed)
    return load()


def _generate_on_first_use(name: str, root: str, split: str) -> None:
    """Wrap the loader registered as ``name`` so that it generates the split first."""
    load = DatasetCatalog[name]
    DatasetCatalog.remove(name)
    DatasetCatalog.register(name, functools.partial(_generate_then_load, root, split, load))


def register_all_shapes(root: str) -> None:
    """Register the 12 Shapes datasets (module doc) with their files under ``root/shapes``."""
    shapes = os.path.join(root, "shapes")
    standard = panoptic_metadata(CATEGORIES)
    separated = panoptic_metadata(CATEGORIES, separated=True)
    thing_keys = ("thing_classes", "thing_dataset_id_to_contiguous_id", "thing_colors")
    for split in _SHAPES_SPLITS:
        image_root = os.path.join(shapes, split, "images")
        instances_json = os.path.join(shapes, "annotations", f"instances_{split}.json")
        panoptic_json = os.path.join(shapes, "annotations", f"panoptic_{split}.json")
        panoptic_root = os.path.join(shapes, f"panoptic_{split}")
        sem_seg_root = os.path.join(shapes, f"sem_seg_{split}")
        name = f"shapes_{split}"

        register_coco_instances(name, {k: standard[k] for k in thing_keys}, instances_json, image_root)
        DatasetCatalog.register(f"{name}_sem_seg", functools.partial(load_sem_seg, sem_seg_root, image_root,
                                                                      gt_ext="png", image_ext="png"))
        MetadataCatalog.get(f"{name}_sem_seg").set(
            stuff_classes=standard["stuff_classes"], stuff_colors=standard["stuff_colors"], ignore_label=255,
            evaluator_type="sem_seg", sem_seg_root=sem_seg_root, image_root=image_root)
        register_coco_panoptic(f"{name}_panoptic", standard, image_root, panoptic_root, panoptic_json,
                               instances_json)
        register_coco_panoptic_separated(f"{name}_panoptic", separated, image_root, panoptic_root, panoptic_json,
                                         os.path.join(shapes, f"panoptic_stuff_{split}"), instances_json)
        # Mask2Former's evaluation set (as coco_2017_val_panoptic_with_sem_seg): the panoptic records plus
        # the semantic label PNGs, whose ids are the standard convention's contiguous ids
        register_coco_panoptic(f"{name}_panoptic_with_sem_seg", standard, image_root, panoptic_root,
                               panoptic_json, instances_json)
        DatasetCatalog.remove(f"{name}_panoptic_with_sem_seg")
        DatasetCatalog.register(f"{name}_panoptic_with_sem_seg", functools.partial(
            load_panoptic_with_sem_seg, panoptic_json, image_root, panoptic_root, sem_seg_root, standard,
            f"Shapes {split} panoptic with semantic labels", "Delete the shapes folder to regenerate it."))
        MetadataCatalog.get(f"{name}_panoptic_with_sem_seg").set(sem_seg_root=sem_seg_root)
        for registered in (name, f"{name}_sem_seg", f"{name}_panoptic", f"{name}_panoptic_separated",
                           f"{name}_panoptic_with_sem_seg"):
            _generate_on_first_use(registered, root, split)


def register_all_coco(root: str) -> None:
    """Register ``coco_2017_{train,val}`` (COCO instances) with their files under ``root/coco``."""
    coco = os.path.join(root, "coco")
    for split in ("train", "val"):
        register_coco_instances(f"coco_2017_{split}", {},
                                os.path.join(coco, "annotations", f"instances_{split}2017.json"),
                                os.path.join(coco, f"{split}2017"))


def _json_class_metadata(name: str, panoptic_json: str, separated: bool) -> Dict[str, Any]:
    """Class metadata from the categories of ``panoptic_json``, also set on ``MetadataCatalog.get(name)``."""
    data = read_json(panoptic_json)
    categories = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(categories, list) or not categories:
        raise DataError("The panoptic json has no 'categories' list ([{id, name, isthing}, ...]); it is needed "
                        "for the class names and ids. Use the official panoptic_{train,val}2017.json.",
                        file_name=panoptic_json)
    metadata = panoptic_metadata(categories, separated=separated)
    MetadataCatalog.get(name).set(**metadata)
    return metadata


def _load_coco_panoptic(name: str, image_root: str, panoptic_root: str, panoptic_json: str) -> List[Dict[str, Any]]:
    metadata = _json_class_metadata(name, panoptic_json, separated=False)
    return load_coco_panoptic_json(panoptic_json, image_root, panoptic_root, metadata)


def _load_coco_panoptic_separated(name: str, image_root: str, panoptic_root: str, panoptic_json: str,
                                  sem_seg_root: str, instances_json: str) -> List[Dict[str, Any]]:
    metadata = _json_class_metadata(name, panoptic_json, separated=True)
    return load_separated(name, metadata, image_root, panoptic_root, panoptic_json, sem_seg_root, instances_json,
                           allow_outside_root=False)


def register_all_coco_panoptic(root: str) -> None:
    """Register ``coco_2017_{train,val}_panoptic[_separated]`` (module doc) with their files under
    ``root/coco``, without reading them: the class metadata comes from the panoptic json at first load."""
    coco = os.path.join(root, "coco")
    for split in ("train", "val"):
        name = f"coco_2017_{split}_panoptic"
        image_root = os.path.join(coco, f"{split}2017")
        panoptic_root = os.path.join(coco, f"panoptic_{split}2017")
        panoptic_json = os.path.join(coco, "annotations", f"panoptic_{split}2017.json")
        instances_json = os.path.join(coco, "annotations", f"instances_{split}2017.json")
        sem_seg_root = os.path.join(coco, f"panoptic_stuff_{split}2017")
        common = dict(image_root=image_root, panoptic_root=panoptic_root, panoptic_json=panoptic_json,
                      json_file=instances_json, evaluator_type="coco_panoptic_seg", ignore_label=255,
                      label_divisor=1000)
        DatasetCatalog.register(name, functools.partial(_load_coco_panoptic, name, image_root, panoptic_root,
                                                        panoptic_json))
        MetadataCatalog.get(name).set(**common)
        separated = name + "_separated"
        DatasetCatalog.register(separated, functools.partial(_load_coco_panoptic_separated, separated, image_root,
                                                             panoptic_root, panoptic_json, sem_seg_root,
                                                             instances_json))
        MetadataCatalog.get(separated).set(sem_seg_root=sem_seg_root, **common)


_COCO_SEMSEG_HINT = ("Unpack COCO 2017's images ({train,val}2017.zip) and panoptic annotations "
                     "(panoptic_annotations_trainval2017.zip, with the PNG zips inside it) into $SEG_DATASETS/coco, and "
                     "make the semantic label PNGs panoptic_semseg_{train,val}2017/ with "
                     "python datasets/prepare_coco_semantic_from_panoptic.py (see datasets/README.md).")


def _load_coco_panoptic_with_sem_seg(name: str, image_root: str, panoptic_root: str, panoptic_json: str,
                                     sem_seg_root: str) -> List[Dict[str, Any]]:
    check_dirs_exist([image_root, panoptic_root, sem_seg_root], "COCO panoptic with semantic labels", _COCO_SEMSEG_HINT)
    check_files_exist([panoptic_json], "panoptic json", _COCO_SEMSEG_HINT)
    metadata = _json_class_metadata(name, panoptic_json, separated=False)
    return load_panoptic_with_sem_seg(panoptic_json, image_root, panoptic_root, sem_seg_root, metadata,
                                      "COCO panoptic with semantic labels", _COCO_SEMSEG_HINT)


def register_all_coco_panoptic_with_sem_seg(root: str) -> None:
    """Register Mask2Former's ``coco_2017_{train,val}_panoptic_with_sem_seg`` with files under ``root/coco``:
    the ``coco_2017_*_panoptic`` records plus ``sem_seg_file_name`` = ``panoptic_semseg_{split}2017/<PNG name>``
    (uint8 labels in the standard convention's ids, the 133 classes things first, 255 void). The class
    metadata comes from the panoptic json at first load, as for ``coco_2017_*_panoptic``."""
    coco = os.path.join(root, "coco")
    for split in ("train", "val"):
        name = f"coco_2017_{split}_panoptic_with_sem_seg"
        image_root = os.path.join(coco, f"{split}2017")
        panoptic_root = os.path.join(coco, f"panoptic_{split}2017")
        panoptic_json = os.path.join(coco, "annotations", f"panoptic_{split}2017.json")
        sem_seg_root = os.path.join(coco, f"panoptic_semseg_{split}2017")
        DatasetCatalog.register(name, functools.partial(_load_coco_panoptic_with_sem_seg, name, image_root,
                                                        panoptic_root, panoptic_json, sem_seg_root))
        MetadataCatalog.get(name).set(
            image_root=image_root, panoptic_root=panoptic_root, panoptic_json=panoptic_json, sem_seg_root=sem_seg_root,
            json_file=os.path.join(coco, "annotations", f"instances_{split}2017.json"),
            evaluator_type="coco_panoptic_seg", ignore_label=255, label_divisor=1000)


register_all_shapes(get_datasets_root())
register_all_coco(get_datasets_root())
register_all_coco_panoptic(get_datasets_root())
register_all_coco_panoptic_with_sem_seg(get_datasets_root())
register_all_ph2(get_datasets_root())
register_all_mads(get_datasets_root())
register_all_voc2012_sem_seg(get_datasets_root())
register_all_ade20k(get_datasets_root())
register_all_ade20k_panoptic(get_datasets_root())
register_all_mapillary_vistas(get_datasets_root())
register_all_mask2former_sem_seg(get_datasets_root())
register_all_cityscapes(get_datasets_root())
register_all_cityscapes_panoptic(get_datasets_root())
register_all_pascal_voc(get_datasets_root())


__getattr__ = absent_names(__name__, {"register_all_lvis": LVIS})
