"""Convert detectron2 checkpoints (model-zoo ``.pkl``, ``.pth``) and MSRA/FAIR Caffe2 ImageNet
``.pkl`` backbones to our parameter names.

detectron2 v0.6 and seg_research build the same modules (identical parameter counts for every
FPN, C4 and DC5 config); only the layout of the names differs. Renaming (detectron2 -> ours)::

    *.stem.conv1.norm.*                      -> *.stem.bn1.*
    *.res<s>.<b>.conv<k>.norm.*              -> *.res<s>.<b>.bn<k>.*
    *.res<s>.<b>.shortcut.{weight,bias}      -> *.res<s>.<b>.downsample.0.*
    *.res<s>.<b>.shortcut.norm.*             -> *.res<s>.<b>.downsample.1.*
    backbone.fpn_{lateral,output}<l>.{weight,bias} / .norm.* -> backbone.fpn_{lateral,output}<l>.0.* / .1.*
    proposal_generator.rpn_head.conv.*       -> proposal_generator.rpn_head.conv.0.0.*
    roi_heads.mask_head.mask_fcn<k>.* / .norm.* -> roi_heads.mask_head.mask_fcn<k>.0.* / .1.*
    roi_heads.box_head.conv<k>.* / .norm.*   -> roi_heads.box_head.conv<k>.0.* / .1.*
    sem_seg_head.p<l>.<j>.* / .norm.*        -> sem_seg_head.scale_heads.p<l>.<j>.0.* / .1.*

Class rows need no re-ordering: detectron2 also puts the background class last.

Caffe2 ImageNet names (``R-50.pkl``, ``R-101.pkl``, ``X-101-32x8d.pkl``) -> ours, under the
model's ResNet (e.g. ``backbone.bottom_up.``)::

    conv1_w                                   -> stem.conv1.weight
    res_conv1_bn_{s,b}                        -> stem.bn1.{weight,bias}
    res<s>_<b>_branch2{a,b,c}_w               -> res<s>.<b>.conv{1,2,3}.weight
    res<s>_<b>_branch2{a,b,c}_bn_{s,b}        -> res<s>.<b>.bn{1,2,3}.{weight,bias}
    res<s>_<b>_branch1_w / _bn_{s,b}          -> res<s>.<b>.downsample.0.weight / downsample.1.*
    fc1000_*, *_momentum                      -> dropped

Caffe2's affine channel computes ``s * x + b``; each norm also gets ``running_mean = 0`` and
``running_var = 1 - eps`` so that a (Frozen)BatchNorm computes exactly that. These weights
expect BGR input in 0..255 with ``PIXEL_MEAN [103.53, 116.28, 123.675]``, ``PIXEL_STD [1, 1, 1]``
and ``RESNETS.STRIDE_IN_1X1 True`` (detectron2's defaults, kept by our MSRA-based configs).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Collection, Dict, List, Mapping, Tuple, Union

import numpy as np
import torch

__all__ = [
    "is_detectron2_state_dict",
    "convert_detectron2_state_dict",
    "is_caffe2_resnet_state_dict",
    "convert_caffe2_resnet_state_dict",
]

_Replacement = Union[str, Callable[["re.Match[str]"], str]]

# (pattern, replacement), the first match wins; keys matching none keep their name.
_DETECTRON2_RENAMES: List[Tuple["re.Pattern[str]", _Replacement]] = [
    (re.compile(p), r) for p, r in [
        (r"(^|\.)stem\.conv1\.norm\.", r"\1stem.bn1."),
        (r"(\.|^)(res\d\.\d+)\.conv(\d)\.norm\.", r"\1\2.bn\3."),
        (r"(\.|^)(res\d\.\d+)\.shortcut\.norm\.", r"\1\2.downsample.1."),
        (r"(\.|^)(res\d\.\d+)\.shortcut\.(weight|bias)$", r"\1\2.downsample.0.\3"),
        (r"^backbone\.fpn_(lateral|output)(\d)\.norm\.", r"backbone.fpn_\1\2.1."),
        (r"^backbone\.fpn_(lateral|output)(\d)\.(weight|bias)$", r"backbone.fpn_\1\2.0.\3"),
        (r"\.rpn_head\.conv\.(weight|bias)$", r".rpn_head.conv.0.0.\1"),
        (r"\.(mask_fcn\d|box_head\.conv\d)\.norm\.", r".\1.1."),
        (r"\.(mask_fcn\d|box_head\.conv\d)\.(weight|bias)$", r".\1.0.\2"),
        (r"^sem_seg_head\.(p\d)\.(\d+)\.norm\.", r"sem_seg_head.scale_heads.\1.\2.1."),
        (r"^sem_seg_head\.(p\d)\.(\d+)\.(weight|bias)$", r"sem_seg_head.scale_heads.\1.\2.0.\3"),
    ]
]
# Names that only detectron2's layout has (ours never produces them).
_DETECTRON2_SIGNATURE = re.compile(
    r"(^|\.)stem\.conv1\.norm\.|\.res\d\.\d+\.(conv\d|shortcut)\.norm\.|^backbone\.fpn_(lateral|output)\d\.weight$"
    r"|\.rpn_head\.conv\.weight$|\.mask_fcn\d\.weight$|^sem_seg_head\.p\d\.\d+\.weight$"
)
_CAFFE2_SIGNATURE = re.compile(r"^res\d_\d+_branch(1|2[abc])_w$")
_CAFFE2_CONVS = {"2a": "1", "2b": "2", "2c": "3"}
#: eps of the FrozenBatchNorm2d / BatchNorm2d the Caffe2 scale/bias pairs are loaded into.
_NORM_EPS = 1e-5


def is_detectron2_state_dict(keys: Collection[str]) -> bool:
    """True when ``keys`` use detectron2's names (e.g. ``...res2.0.conv1.norm.weight``)."""
    return any(_DETECTRON2_SIGNATURE.search(k) for k in keys)


def convert_detectron2_state_dict(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """Rename a detectron2 model state_dict (values: tensors or numpy arrays, kept as they
    are) to our names; see the module doc. Names without a rule (``roi_heads.box_head.fc1.*``,
    ``..._predictor.*``, ``res5`` blocks' convs, ...) are the same in both layouts."""
    converted = {}
    for key, value in state_dict.items():
        for pattern, replacement in _DETECTRON2_RENAMES:
            new_key, count = pattern.subn(replacement, key, count=1)
            if count:
                break
        converted[new_key] = value
    return converted


def is_caffe2_resnet_state_dict(keys: Collection[str]) -> bool:
    """True for the blobs of a Caffe2 ResNet (``res2_0_branch2a_w``, ``conv1_w``, ...)."""
    return "conv1_w" in keys and any(_CAFFE2_SIGNATURE.match(k) for k in keys)


def _caffe2_module_name(blob: str) -> Tuple[str, str, bool]:
    """``"res2_0_branch2a_bn_s"`` -> ``("res2.0.bn1", "weight", True)`` (module, parameter, is a
    norm); raises ``ValueError`` when unknown."""
    parts = {"w": "weight", "s": "weight", "b": "bias"}
    if blob == "conv1_w":
        return "stem.conv1", "weight", False
    match = re.fullmatch(r"res_conv1_bn_([sb])", blob)
    if match:
        return "stem.bn1", parts[match[1]], True
    match = re.fullmatch(r"res(\d)_(\d+)_branch(1|2[abc])_(w|bn_s|bn_b)", blob)
    if not match:
        raise ValueError(f"no mapping for Caffe2 blob '{blob}'")
    stage, block, branch, kind = match.groups()
    is_norm = kind.startswith("bn")
    if branch == "1":
        module = "downsample.1" if is_norm else "downsample.0"
    else:
        module = ("bn" if is_norm else "conv") + _CAFFE2_CONVS[branch]
    return f"res{stage}.{block}.{module}", parts[kind[-1]], is_norm


def convert_caffe2_resnet_state_dict(blobs: Mapping[str, Any], prefix: str = "") -> Dict[str, torch.Tensor]:
    """Convert Caffe2 ImageNet ResNet/ResNeXt blobs (numpy arrays) to our ResNet names under
    ``prefix``; see the module doc. The classifier (``fc1000``/``pred``) and solver state
    (``*_momentum``) are dropped.

    Raises:
        ValueError: naming the blobs that have no mapping.
    """
    converted: Dict[str, torch.Tensor] = {}
    unknown = []
    for blob, value in blobs.items():
        if blob.startswith(("fc1000", "pred_")) or blob.endswith("_momentum") or blob == "lr":
            continue
        try:
            module, param, is_norm = _caffe2_module_name(blob)
        except ValueError:
            unknown.append(blob)
            continue
        tensor = torch.as_tensor(np.asarray(value))
        converted[f"{prefix}{module}.{param}"] = tensor
        if is_norm and param == "weight":
            converted[f"{prefix}{module}.running_mean"] = torch.zeros_like(tensor)
            converted[f"{prefix}{module}.running_var"] = torch.full_like(tensor, 1.0 - _NORM_EPS)
    if unknown:
        raise ValueError(f"no mapping for Caffe2 blobs {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
    return converted
