"""ResNet backbone assembled from torchvision's ResNet modules (blocks are not re-implemented).

Module layout (torchvision's names under detectron2's stage names)::

    stem.conv1, stem.bn1, stem.relu, stem.maxpool   <- torchvision conv1, bn1, relu, maxpool
    res2, res3, res4, res5                          <- torchvision layer1 .. layer4

so a torchvision ImageNet state_dict loads after
:func:`~seg_research.checkpoint.torchvision_resnet.convert_torchvision_resnet_state_dict` (re-exported here).
Strides: stem 4, res2 4, res3 8, res4 16, res5 32. Dilated stages trade their stride-2 for
dilated 3×3 convs (DeepLab's "output stride"): ``res5_dilation=2`` keeps res5 at stride 16
(output stride 16); ``res4_dilation=2, res5_dilation=4`` keeps res4 and res5 at stride 8
(output stride 8).
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple, Type

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from ...checkpoint.torchvision_resnet import convert_torchvision_resnet_state_dict
from ...config import ConfigError, configurable
from ...layers import ShapeSpec, convert_frozen_batchnorm, get_norm
from ...utils.absent import absent_names
from .backbone import Backbone
from .build import BACKBONE_REGISTRY

__all__ = ["ResNet", "build_resnet_backbone", "make_res5_stage", "convert_torchvision_resnet_state_dict",
           "TORCHVISION_STAGES_ADVICE"]

#: What detectron2's hand-written ResNet parts (BasicStem, BottleneckBlock, make_stage, ...) are here.
TORCHVISION_STAGES_ADVICE = (
    "not provided: ResNet stages are torchvision's (torchvision.models.resnet.BasicBlock / Bottleneck), wrapped "
    "by modeling.ResNet; backbone.resnet.make_res5_stage builds the C4 res5 head.")
__getattr__ = absent_names(__name__, {
    **{name: TORCHVISION_STAGES_ADVICE
       for name in ("BasicBlock", "BasicStem", "BottleneckBlock", "ResNetBlockBase", "make_stage")},
    "DeformBottleneckBlock": "deformable convolutions are not supported (MODEL.RESNETS.DEFORM_ON_PER_STAGE must "
                             "stay False); torchvision.ops.DeformConv2d is available for a block of your own.",
})

# depth -> (torchvision block class, blocks per stage res2..res5), as torchvision's resnet18 .. resnet152 use
_ARCHS: Dict[int, Tuple[Type[nn.Module], Tuple[int, int, int, int]]] = {
    18: (tv_resnet.BasicBlock, (2, 2, 2, 2)),
    34: (tv_resnet.BasicBlock, (3, 4, 6, 3)),
    50: (tv_resnet.Bottleneck, (3, 4, 6, 3)),
    101: (tv_resnet.Bottleneck, (3, 4, 23, 3)),
    152: (tv_resnet.Bottleneck, (3, 8, 36, 3)),
}
_STAGE_NAMES = ("res2", "res3", "res4", "res5")  # torchvision layer1 .. layer4
_STEM_CHANNELS = 64  # fixed by torchvision's ResNet
# (res4_dilation, res5_dilation) for output stride 32, 16 and 8: a dilated stage doubles the previous dilation.
_SUPPORTED_DILATIONS = ((1, 1), (1, 2), (2, 4))


def _move_stride_to_1x1(stage: nn.Sequential) -> None:
    """MSRA convention: in the first Bottleneck of ``stage``, stride on conv1 (1×1), not conv2 (3×3)."""
    first = stage[0]
    first.conv1.stride, first.conv2.stride = first.conv2.stride, (1, 1)


def _dilate_basic_stage(stage: nn.Sequential, dilation: int, previous_dilation: int) -> None:
    """Turn a stride-2 stage of BasicBlocks into a stride-1 dilated one, following torchvision's
    ``replace_stride_with_dilation`` for Bottlenecks (which torchvision refuses for BasicBlock):
    the first block loses its stride (conv1 and the downsample 1×1) and keeps the previous
    stage's ``previous_dilation``, the later blocks get ``dilation``; both 3×3 convs of a block
    get its dilation and the matching same-size padding."""
    first = stage[0]
    first.conv1.stride = (1, 1)
    first.downsample[0].stride = (1, 1)
    for i, block in enumerate(stage):
        block_dilation = previous_dilation if i == 0 else dilation
        for conv in (block.conv1, block.conv2):
            conv.dilation = conv.padding = (block_dilation, block_dilation)


def _torchvision_resnet(
    depth: int, *, norm: str, stride_in_1x1: bool, res4_dilation: int = 1, res5_dilation: int = 1,
    num_groups: int = 1, width_per_group: int = 64, full_stages: Sequence[int] = (0, 1, 2, 3),
    dilate_first_block: bool = False,
) -> tv_resnet.ResNet:
    """torchvision's ResNet-``depth`` (random init) with our conventions applied: ``norm`` layers,
    the MSRA stride placement (``stride_in_1x1``) and dilated res4/res5 (BasicBlock too; with
    ``dilate_first_block`` the first block of a dilated stage gets the stage's dilation, as in
    detectron2, instead of the previous stage's, as in torchvision). Stages (0: res2 .. 3: res5)
    not in ``full_stages`` get a single block: the callers discard them."""
    block_cls, layers = _ARCHS[depth]
    is_bottleneck = block_cls is tv_resnet.Bottleneck
    net = tv_resnet.ResNet(
        block_cls,
        [n if i in full_stages else 1 for i, n in enumerate(layers)],
        norm_layer=functools.partial(get_norm, norm),
        groups=num_groups,
        width_per_group=width_per_group,
        replace_stride_with_dilation=[False, is_bottleneck and res4_dilation > 1, is_bottleneck and res5_dilation > 1],
    )
    if not is_bottleneck:
        if res4_dilation > 1:
            _dilate_basic_stage(net.layer3, res4_dilation, previous_dilation=1)
        if res5_dilation > 1:
            _dilate_basic_stage(net.layer4, res5_dilation, previous_dilation=res4_dilation)
    if is_bottleneck and stride_in_1x1:
        for stage in (net.layer2, net.layer3, net.layer4):
            _move_stride_to_1x1(stage)
    if dilate_first_block:
        for stage, dilation in ((net.layer3, res4_dilation), (net.layer4, res5_dilation)):
            for conv in (stage[0].conv2,) if is_bottleneck else (stage[0].conv1, stage[0].conv2):
                if dilation > 1:
                    conv.dilation = conv.padding = (dilation, dilation)
    return net


def make_res5_stage(
    depth: int = 50, *, norm: str = "FrozenBN", stride_in_1x1: bool = True, num_groups: int = 1,
    width_per_group: int = 64,
) -> nn.Sequential:
    """The res5 stage of :class:`ResNet` (torchvision ``layer4``: the same blocks, names and
    settings) on its own, with its stride 2 and no dilation, e.g. for the C4 ROI heads, which run
    it on pooled res4 features.

    Input: float (R, C4, S, S), C4 the res4 channels (1024 for ResNet-50/101/152, 256 for
    ResNet-18/34). Output: (R, 2 * C4, ceil(S / 2), ceil(S / 2)).
    """
    if depth not in _ARCHS:
        raise ValueError(f"ResNet depth {depth} is not supported; use one of {sorted(_ARCHS)}.")
    return _torchvision_resnet(depth, norm=norm, stride_in_1x1=stride_in_1x1, num_groups=num_groups,
                               width_per_group=width_per_group, full_stages=(3,)).layer4


class ResNet(Backbone):
    """ResNet-18/34/50/101/152 returning the feature maps named in ``out_features``.

    Input: float32 (N, in_channels, H, W). Output: name -> (N, C, H / stride, W / stride)
    (rounded up) for names among "stem", "res2", "res3", "res4", "res5". Stages after the
    last requested one are not built (no unused parameters under DDP).
    """

    @configurable
    def __init__(
        self,
        *,
        depth: int = 50,
        out_features: Sequence[str] = ("res5",),
        norm: str = "FrozenBN",
        freeze_at: int = 0,
        stride_in_1x1: bool = True,
        res4_dilation: int = 1,
        res5_dilation: int = 1,
        in_channels: int = 3,
        num_groups: int = 1,
        width_per_group: int = 64,
        dilate_first_block: bool = False,
    ) -> None:
        """
        Args:
            depth: 18, 34 (BasicBlock) or 50, 101, 152 (Bottleneck).
            out_features: subset of ("stem", "res2", "res3", "res4", "res5").
            norm: "FrozenBN", "BN", "SyncBN" or "GN" (see :func:`get_norm`), for every norm layer.
            freeze_at: 0 trains everything; k >= 1 freezes the stem and res2..res<k> (see :meth:`freeze`).
            stride_in_1x1: Bottleneck only: put each stage's stride-2 on the first 1×1 conv (MSRA /
                detectron2 weights) instead of the 3×3 conv (torchvision weights). BasicBlock has
                no 1×1 conv, so it is ignored there.
            res4_dilation, res5_dilation: dilation of the 3×3 convs of res4 / res5 in place of
                their stride 2: (1, 1) output stride 32, (1, 2) res5 at stride 16, (2, 4) res4
                and res5 at stride 8.
            in_channels: C of the input images (the stem conv is rebuilt when it is not 3).
            num_groups, width_per_group: ResNeXt settings, passed to torchvision (Bottleneck only).
            dilate_first_block: the first block of a dilated stage gets that stage's dilation
                (detectron2, e.g. its DC5 models) instead of the previous stage's (torchvision's
                ``replace_stride_with_dilation``); the parameters are the same either way.
        """
        super().__init__()
        if depth not in _ARCHS:
            raise ValueError(f"ResNet depth {depth} is not supported; use one of {sorted(_ARCHS)}.")
        if (res4_dilation, res5_dilation) not in _SUPPORTED_DILATIONS:
            raise ValueError(
                f"(res4_dilation, res5_dilation) = ({res4_dilation}, {res5_dilation}) is not supported; use (1, 1) "
                "for output stride 32, (1, 2) for 16 or (2, 4) for 8 (MODEL.RESNETS.RES4_DILATION / RES5_DILATION)."
            )
        if norm == "":
            raise ValueError(
                "ResNet needs a norm layer (its convs have no bias): use 'FrozenBN', 'BN', 'SyncBN' or 'GN'."
            )
        valid = ("stem",) + _STAGE_NAMES
        unknown = [name for name in out_features if name not in valid]
        if not out_features or unknown:
            raise ValueError(f"ResNet out_features {list(out_features)} must be a non-empty subset of {list(valid)}.")

        block_cls = _ARCHS[depth][0]
        num_stages = max(valid.index(name) for name in out_features)  # stages up to the last requested
        net = _torchvision_resnet(depth, norm=norm, stride_in_1x1=stride_in_1x1, res4_dilation=res4_dilation,
                                  res5_dilation=res5_dilation, num_groups=num_groups,
                                  width_per_group=width_per_group, full_stages=range(num_stages),
                                  dilate_first_block=dilate_first_block)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, _STEM_CHANNELS, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")

        self._in_channels = in_channels
        self.stem = nn.Sequential(
            OrderedDict(conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool)
        )
        self._stage_names = list(_STAGE_NAMES[:num_stages])
        for i, name in enumerate(self._stage_names):
            self.add_module(name, getattr(net, f"layer{i + 1}"))

        self._out_feature_channels = {"stem": _STEM_CHANNELS}
        self._out_feature_strides = {"stem": 4}
        for i, name in enumerate(_STAGE_NAMES):
            self._out_feature_channels[name] = 64 * 2**i * block_cls.expansion
            self._out_feature_strides[name] = 4 * 2**i
        self._out_feature_strides["res4"] //= res4_dilation
        self._out_feature_strides["res5"] //= res5_dilation
        self._out_features = [name for name in valid if name in out_features]
        self.freeze(freeze_at)

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[ShapeSpec] = None) -> dict:
        r = cfg.MODEL.RESNETS
        if r.DEPTH not in _ARCHS:
            raise ConfigError(f"MODEL.RESNETS.DEPTH {r.DEPTH} is not supported; use one of {sorted(_ARCHS)}.")
        res2_channels = 64 * _ARCHS[r.DEPTH][0].expansion
        if r.RES2_OUT_CHANNELS != res2_channels:
            raise ConfigError(
                f"MODEL.RESNETS.RES2_OUT_CHANNELS is {r.RES2_OUT_CHANNELS}, but ResNet-{r.DEPTH} has "
                f"{res2_channels} res2 channels: set MODEL.RESNETS.RES2_OUT_CHANNELS {res2_channels}."
            )
        if r.STEM_OUT_CHANNELS != _STEM_CHANNELS:
            raise ConfigError(
                f"MODEL.RESNETS.STEM_OUT_CHANNELS is {r.STEM_OUT_CHANNELS}, but torchvision's ResNet stem "
                f"has {_STEM_CHANNELS} channels: set MODEL.RESNETS.STEM_OUT_CHANNELS {_STEM_CHANNELS}."
            )
        if r.DILATION_CONVENTION not in ("torchvision", "detectron2"):
            raise ConfigError(f"MODEL.RESNETS.DILATION_CONVENTION is '{r.DILATION_CONVENTION}'; use 'torchvision' "
                              "or 'detectron2'.")
        channels = input_shape.channels if input_shape is not None and input_shape.channels else None
        return {
            "depth": r.DEPTH,
            "out_features": list(r.OUT_FEATURES),
            "norm": r.NORM,
            "freeze_at": cfg.MODEL.BACKBONE.FREEZE_AT,
            "stride_in_1x1": r.STRIDE_IN_1X1,
            "res4_dilation": r.RES4_DILATION,
            "res5_dilation": r.RES5_DILATION,
            "in_channels": channels or len(cfg.MODEL.PIXEL_MEAN),
            "num_groups": r.NUM_GROUPS,
            "width_per_group": r.WIDTH_PER_GROUP,
            "dilate_first_block": r.DILATION_CONVENTION == "detectron2",
        }

    def freeze(self, freeze_at: int) -> "ResNet":
        """Freeze the stem (``freeze_at >= 1``) and res2..res<freeze_at> (``freeze_at >= 2``):
        their parameters get ``requires_grad=False`` and their BatchNorm/SyncBatchNorm layers
        become ``FrozenBatchNorm2d`` (GroupNorm layers stay, with frozen parameters).
        Returns ``self``."""
        if not 0 <= freeze_at <= 1 + len(_STAGE_NAMES):
            raise ValueError(f"freeze_at must be in 0..{1 + len(_STAGE_NAMES)}, got {freeze_at}.")
        for name in ["stem", *self._stage_names][:freeze_at]:
            module = getattr(self, name)
            for param in module.parameters():
                param.requires_grad_(False)
            convert_frozen_batchnorm(module)
        return self

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args:
            x: float32 (N, in_channels, H, W).

        Returns:
            name -> (N, C, ceil(H / stride), ceil(W / stride)) for each of ``out_features``.
        """
        if x.dim() != 4 or x.shape[1] != self._in_channels:
            raise ValueError(f"ResNet expects (N, {self._in_channels}, H, W) input, got shape {tuple(x.shape)}.")
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name in self._stage_names:
            x = getattr(self, name)(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """ResNet from ``MODEL.RESNETS.*`` and ``MODEL.BACKBONE.FREEZE_AT``."""
    return ResNet(cfg, input_shape=input_shape)
