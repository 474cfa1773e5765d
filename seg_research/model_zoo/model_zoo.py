"""Config files shipped with seg_research under detectron2's names, and the checkpoints
detectron2 published for them.

Names are paths relative to the ``configs/`` folder, exactly as detectron2 spells them
(``"COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"``; the ``.yaml`` may be left out).
An installed wheel carries the configs as package data (``seg_research/model_zoo/configs``,
copied by ``setup.py``); a source checkout reads the repository's ``configs/`` folder.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import torch
from torch import nn

from ..checkpoint import Checkpointer
from ..config import CfgNode, get_cfg
from ..modeling import build_model
from ..utils.download import DETECTRON2_URL_PREFIX

__all__ = ["MODEL_ZOO_URLS", "get", "get_checkpoint_url", "get_config", "get_config_file", "list_configs"]

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


def _config_roots() -> List[str]:
    """Folders searched for config files: the packaged copy, then a source checkout's ``configs/``."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "configs"), os.path.join(os.path.dirname(os.path.dirname(here)), "configs")]


def _stem(config_path: str) -> str:
    return config_path[: -len(".yaml")] if config_path.endswith(".yaml") else config_path


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
    name = _stem(config_path) + ".yaml"
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
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
    """The URL of the weights detectron2 published for ``config_path``, e.g.
    ``https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/
    137849600/model_final_f10217.pkl``. Raises ``RuntimeError`` when none is published."""
    name = _stem(config_path)
    if name not in MODEL_ZOO_URLS:
        raise RuntimeError(
            f"No pretrained model is published for '{config_path}'. Configs with weights: "
            f"{', '.join(n + '.yaml' for n in MODEL_ZOO_URLS)}"
        )
    return f"{DETECTRON2_URL_PREFIX}{name}/{MODEL_ZOO_URLS[name]}"


def get_config(config_path: str, trained: bool = False) -> CfgNode:
    """The config of ``config_path`` merged into the defaults. With ``trained=True``,
    ``MODEL.WEIGHTS`` is the published checkpoint (:func:`get_checkpoint_url`); otherwise it
    stays what the file says (typically ImageNet backbone weights)."""
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(config_path))
    if trained:
        cfg.MODEL.WEIGHTS = get_checkpoint_url(config_path)
    return cfg


def get(config_path: str, trained: bool = False, device: Optional[str] = None) -> nn.Module:
    """Build the model of ``config_path`` and load ``MODEL.WEIGHTS`` (downloaded once into the
    weights cache, see :func:`seg_research.utils.download.resolve_weights`).

    Args:
        config_path: config name relative to ``configs/``.
        trained: load detectron2's published weights for it (see :func:`get_config`).
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
