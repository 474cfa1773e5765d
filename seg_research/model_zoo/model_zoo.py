"""Config files shipped with seg_research under detectron2's names, and the checkpoints
detectron2 published for them; Mask2Former's configs under its names, and its official checkpoints.

Names are paths relative to the ``configs/`` folder, exactly as detectron2 spells them
(``"COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"``; the ``.yaml`` may be left out).
An installed wheel carries the configs as package data (``seg_research/model_zoo/configs``,
copied by ``setup.py``); a source checkout reads the repository's ``configs/`` folder.

Mask2Former's configs (``coco/``, ``ade20k/``, ``cityscapes/``, ``mapillary-vistas/``, upstream's
paths, e.g. ``"coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml"``) need the keys of
``seg_research.projects.deeplab`` and ``seg_research.projects.mask2former``, and the latter's modules
registered: :func:`get_config` adds both (:data:`PROJECT_CONFIGS`). Their weights
(:data:`MASK2FORMER_ZOO_URLS`) are under CC BY-NC 4.0, not the code's licence (``configs/README.md``).
"""
from __future__ import annotations

import importlib
import os
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..checkpoint import Checkpointer
from ..config import CfgNode, get_cfg
from ..modeling import build_model
from ..utils.download import DETECTRON2_URL_PREFIX

__all__ = ["MASK2FORMER_URL_PREFIX", "MASK2FORMER_ZOO_URLS", "MODEL_ZOO_URLS", "PROJECT_CONFIGS", "get", "get_checkpoint_url", "get_config", "get_config_file", "list_configs"]

#: config name (without ``.yaml``) -> ``<model id>/model_final_<hash>.pkl`` under
#: ``DETECTRON2_URL_PREFIX + <name>/``: detectron2 v0.6's published COCO / Cityscapes weights
#: for every model seg_research builds (detectron2's MODEL_ZOO.md).
MODEL_ZOO_URLS: Dict[str, str] = {
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x": "137259246/model_final_9243eb.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_1x": "137260150/model_final_4f86c3.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x": "137260431/model_final_a54504.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x": "137849525/model_final_4ce675.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_3x": "137849551/model_final_84107b.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x": "137849600/model_final_f10217.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_C4_3x": "138363239/model_final_a2914c.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_DC5_3x": "138363294/model_final_0464b7.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x": "138205316/model_final_a3ec72.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x": "139653917/model_final_2d9806.pkl",
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_1x": "139514544/model_final_dbfeb4.pkl",
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x": "139514569/model_final_c10459.pkl",
    "COCO-PanopticSegmentation/panoptic_fpn_R_101_3x": "139514519/model_final_cafdb1.pkl",
    "Cityscapes/mask_rcnn_R_50_FPN": "142423278/model_final_af9cf5.pkl",
}

MASK2FORMER_URL_PREFIX = "https://dl.fbaipublicfiles.com/maskformer/mask2former/"
#: config name (without ``.yaml``) -> path under :data:`MASK2FORMER_URL_PREFIX`: the official weights of
#: upstream's MODEL_ZOO.md for each of its 47 image model configs (CC BY-NC 4.0). MODEL_ZOO.md links the
#: Mapillary Vistas semantic R50 weights to ``maskformer_R50_bs16_300k.yaml``, a file upstream does not
#: have; they are listed here under the config that exists, ``maskformer2_R50_bs16_300k``.
MASK2FORMER_ZOO_URLS: Dict[str, str] = {
"coco/panoptic-segmentation/maskformer2_R50_bs16_50ep": "coco/panoptic/maskformer2_R50_bs16_50ep/model_final_94dc52.pkl",
    "coco/panoptic-segmentation/maskformer2_R101_bs16_50ep": "coco/panoptic/maskformer2_R101_bs16_50ep/model_final_b807bd.pkl",
    "coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep": "coco/panoptic/maskformer2_swin_tiny_bs16_50ep/model_final_9fd0ae.pkl",
    "coco/panoptic-segmentation/swin/maskformer2_swin_small_bs16_50ep": "coco/panoptic/maskformer2_swin_small_bs16_50ep/model_final_a407fd.pkl",
    "coco/panoptic-segmentation/swin/maskformer2_swin_base_384_bs16_50ep": "coco/panoptic/maskformer2_swin_base_384_bs16_50ep/model_final_9d7f02.pkl",
    "coco/panoptic-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_50ep": "coco/panoptic/maskformer2_swin_base_IN21k_384_bs16_50ep/model_final_54b88a.pkl",
    "coco/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_100ep": "coco/panoptic/maskformer2_swin_large_IN21k_384_bs16_100ep/model_final_f07440.pkl",
    "coco/instance-segmentation/maskformer2_R50_bs16_50ep": "coco/instance/maskformer2_R50_bs16_50ep/model_final_3c8ec9.pkl",
    "coco/instance-segmentation/maskformer2_R101_bs16_50ep": "coco/instance/maskformer2_R101_bs16_50ep/model_final_eba159.pkl",
    "coco/instance-segmentation/swin/maskformer2_swin_tiny_bs16_50ep": "coco/instance/maskformer2_swin_tiny_bs16_50ep/model_final_86143f.pkl",
    "coco/instance-segmentation/swin/maskformer2_swin_small_bs16_50ep": "coco/instance/maskformer2_swin_small_bs16_50ep/model_final_1e7f22.pkl",
    "coco/instance-segmentation/swin/maskformer2_swin_base_384_bs16_50ep": "coco/instance/maskformer2_swin_base_384_bs16_50ep/model_final_f6e0f6.pkl",
    "coco/instance-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_50ep": "coco/instance/maskformer2_swin_base_IN21k_384_bs16_50ep/model_final_83d103.pkl",
    "coco/instance-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_100ep": "coco/instance/maskformer2_swin_large_IN21k_384_bs16_100ep/model_final_e5f453.pkl",
    "cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k": "cityscapes/panoptic/maskformer2_R50_bs16_90k/model_final_4ab90c.pkl",
    "cityscapes/panoptic-segmentation/maskformer2_R101_bs16_90k": "cityscapes/panoptic/maskformer2_R101_bs16_90k/model_final_04d286.pkl",
    "cityscapes/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_90k": "cityscapes/panoptic/maskformer2_swin_tiny_bs16_90k/model_final_ceba0f.pkl",
    "cityscapes/panoptic-segmentation/swin/maskformer2_swin_small_bs16_90k": "cityscapes/panoptic/maskformer2_swin_small_bs16_90k/model_final_23efb7.pkl",
    "cityscapes/panoptic-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_90k": "cityscapes/panoptic/maskformer2_swin_base_IN21k_384_bs16_90k/model_final_fa840f.pkl",
    "cityscapes/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_90k": "cityscapes/panoptic/maskformer2_swin_large_IN21k_384_bs16_90k/model_final_064788.pkl",
    "cityscapes/instance-segmentation/maskformer2_R50_bs16_90k": "cityscapes/instance/maskformer2_R50_bs16_90k/model_final_01a8ed.pkl",
    "cityscapes/instance-segmentation/maskformer2_R101_bs16_90k": "cityscapes/instance/maskformer2_R101_bs16_90k/model_final_c2b8c8.pkl",
    "cityscapes/instance-segmentation/swin/maskformer2_swin_tiny_bs16_90k": "cityscapes/instance/maskformer2_swin_tiny_bs16_90k/model_final_6a63f8.pkl",
    "cityscapes/instance-segmentation/swin/maskformer2_swin_small_bs16_90k": "cityscapes/instance/maskformer2_swin_small_bs16_90k/model_final_974824.pkl",
    "cityscapes/instance-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_90k": "cityscapes/instance/maskformer2_swin_base_IN21k_384_bs16_90k/model_final_7a3b6d.pkl",
    "cityscapes/instance-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_90k": "cityscapes/instance/maskformer2_swin_large_IN21k_384_bs16_90k/model_final_dfa862.pkl",
    "cityscapes/semantic-segmentation/maskformer2_R50_bs16_90k": "cityscapes/semantic/maskformer2_R50_bs16_90k/model_final_cc1b1f.pkl",
    "cityscapes/semantic-segmentation/maskformer2_R101_bs16_90k": "cityscapes/semantic/maskformer2_R101_bs16_90k/model_final_257ce8.pkl",
    "cityscapes/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_90k": "cityscapes/semantic/maskformer2_swin_tiny_bs16_90k/model_final_2d58d4.pkl",
    "cityscapes/semantic-segmentation/swin/maskformer2_swin_small_bs16_90k": "cityscapes/semantic/maskformer2_swin_small_bs16_90k/model_final_fa26ae.pkl",
    "cityscapes/semantic-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_90k": "cityscapes/semantic/maskformer2_swin_base_IN21k_384_bs16_90k/model_final_1c6b65.pkl",
    "cityscapes/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_90k": "cityscapes/semantic/maskformer2_swin_large_IN21k_384_bs16_90k/model_final_17c1ee.pkl",
    "ade20k/panoptic-segmentation/maskformer2_R50_bs16_160k": "ade20k/panoptic/maskformer2_R50_bs16_160k/model_final_5c90d4.pkl",
    "ade20k/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k": "ade20k/panoptic/maskformer2_swin_large_IN21k_384_bs16_160k/model_final_e0c58e.pkl",
    "ade20k/instance-segmentation/maskformer2_R50_bs16_160k": "ade20k/instance/maskformer2_R50_bs16_160k/model_final_67e945.pkl",
    "ade20k/instance-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k": "ade20k/instance/maskformer2_swin_large_IN21k_384_bs16_160k/model_final_92dae9.pkl",
    "ade20k/semantic-segmentation/maskformer2_R50_bs16_160k": "ade20k/semantic/maskformer2_R50_bs16_160k/model_final_500878.pkl",
    "ade20k/semantic-segmentation/maskformer2_R101_bs16_90k": "ade20k/semantic/maskformer2_R101_bs16_90k/model_final_0d68be.pkl",
    "ade20k/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_160k": "ade20k/semantic/maskformer2_swin_tiny_bs16_160k/model_final_5274a6.pkl",
    "ade20k/semantic-segmentation/swin/maskformer2_swin_small_bs16_160k": "ade20k/semantic/maskformer2_swin_small_bs16_160k/model_final_011c6d.pkl",
    "ade20k/semantic-segmentation/swin/maskformer2_swin_base_384_bs16_160k_res640": "ade20k/semantic/maskformer2_swin_base_384_bs16_160k_res640/model_final_503e96.pkl",
    "ade20k/semantic-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_160k_res640": "ade20k/semantic/maskformer2_swin_base_IN21k_384_bs16_160k_res640/model_final_7e47bf.pkl",
    "ade20k/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k_res640": "ade20k/semantic/maskformer2_swin_large_IN21k_384_bs16_160k_res640/model_final_6b4a3a.pkl",
    "mapillary-vistas/panoptic-segmentation/maskformer_R50_bs16_300k": "mapillary_vistas/panoptic/maskformer_R50_bs16_300k/model_final_4e9874.pkl",
    "mapillary-vistas/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_300k": "mapillary_vistas/panoptic/maskformer2_swin_large_IN21k_384_bs16_300k/model_final_132c71.pkl",
    "mapillary-vistas/semantic-segmentation/maskformer2_R50_bs16_300k": "mapillary_vistas/semantic/maskformer_R50_bs16_300k/model_final_6c66d0.pkl",
    "mapillary-vistas/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_300k": "mapillary_vistas/semantic/maskformer2_swin_large_IN21k_384_bs16_300k/model_final_90ee2d.pkl",
}

#: config folder -> (module, function) pairs that add a project's config keys (importing the module
#: also registers its modules for ``build_model``). Imported by name when such a config is requested:
#: ``seg_research.projects`` is the layer above this one, so it cannot be imported here statically.
PROJECT_CONFIGS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    folder: (("seg_research.projects.deeplab", "add_deeplab_config"),
             ("seg_research.projects.mask2former", "add_maskformer2_config"))
    for folder in ("coco", "ade20k", "cityscapes", "mapillary-vistas")
}


def _config_roots() -> List[str]:
    """Folders searched for config files: the packaged copy, then a source checkout's ``configs/``."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "configs"), os.path.join(os.path.dirname(os.path.dirname(here)), "configs")]


def _stem(config_path: str) -> str:
    """``config_path`` without ``.yaml``, ``./`` segments and backslashes: the name the URL tables use."""
    name = config_path[: -len(".yaml")] if config_path.endswith(".yaml") else config_path
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def list_configs() -> List[str]:
    """Every config name (``"<folder>/<file>.yaml"``) that :func:`get_config_file` finds, sorted."""
    for root in _config_roots():
        if os.path.isdir(root):
            return sorted(
                os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
                for d, _, files in os.walk(root) for f in files if f.endswith(".yaml")
            )
    return []


def get_config_file(config_path: str) -> str:
    """The real path of the config file named ``config_path`` (relative to ``configs/``).

    Raises ``RuntimeError`` naming the config and listing the available ones when it is not shipped.
    """
    parts = (_stem(config_path) + ".yaml").split("/")
    if ".." in parts:
        raise RuntimeError(f"Config name '{config_path}' must stay inside the model zoo's configs/ folder.")
    for root in _config_roots():
        candidate = os.path.join(root, *parts)
        if os.path.isfile(candidate):
            return candidate
    raise RuntimeError(
        f"'{config_path}' is not available in seg_research's model zoo. Available: {', '.join(list_configs())}"
    )


def get_checkpoint_url(config_path: str) -> str:
    """The URL of the weights published for ``config_path``: detectron2's, e.g.
    ``https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/
    137849600/model_final_f10217.pkl``, or Mask2Former's, e.g.
    ``https://dl.fbaipublicfiles.com/maskformer/mask2former/coco/panoptic/maskformer2_R50_bs16_50ep/
    model_final_94dc52.pkl`` (CC BY-NC 4.0). Raises ``RuntimeError`` when none is published."""
    name = _stem(config_path)
    if name in MODEL_ZOO_URLS:
        return f"{DETECTRON2_URL_PREFIX}{name}/{MODEL_ZOO_URLS[name]}"
    if name in MASK2FORMER_ZOO_URLS:
        return MASK2FORMER_URL_PREFIX + MASK2FORMER_ZOO_URLS[name]
    raise RuntimeError(
        f"No pretrained model is published for '{config_path}'. Configs with weights: "
        f"{', '.join(n + '.yaml' for n in [*MODEL_ZOO_URLS, *MASK2FORMER_ZOO_URLS])}"
    )


def _add_project_keys(cfg: CfgNode, config_path: str) -> None:
    """Add the keys of the project whose configs live in ``config_path``'s top folder (if any)."""
    for module, function in PROJECT_CONFIGS.get(_stem(config_path).split("/")[0], ()):
        getattr(importlib.import_module(module), function)(cfg)


def get_config(config_path: str, trained: bool = False) -> CfgNode:
    """The config of ``config_path`` merged into the defaults (and a project's keys, for the configs
    of :data:`PROJECT_CONFIGS`). With ``trained=True``, ``MODEL.WEIGHTS`` is the published checkpoint
    (:func:`get_checkpoint_url`); otherwise it stays what the file says (typically ImageNet backbone
    weights)."""
    cfg = get_cfg()
    _add_project_keys(cfg, config_path)
    cfg.merge_from_file(get_config_file(config_path))
    if trained:
        cfg.MODEL.WEIGHTS = get_checkpoint_url(config_path)
    return cfg


def get(config_path: str, trained: bool = False, device: Optional[str] = None) -> nn.Module:
    """Build the model of ``config_path`` and load ``MODEL.WEIGHTS`` (downloaded once into the
    weights cache, see :func:`seg_research.utils.download.resolve_weights`).

    Args:
        config_path: config name relative to ``configs/``.
        trained: load the published weights for it (see :func:`get_config`).
        device: ``MODEL.DEVICE`` to build on; default ``"cpu"`` without CUDA, else the config's.

    Returns:
        the model, in training mode (call ``.eval()`` for inference).
    """
    cfg = get_config(config_path, trained)
    if device is None and not torch.cuda.is_available():
        device = "cpu"
    if device is not None:
        cfg.MODEL.DEVICE = device
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
    return model
