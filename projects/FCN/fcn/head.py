"""The FCN head (Long et al. 2015): class scores on the deepest feature, refined by skip scores."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from seg_research.config import configurable
from seg_research.layers import ShapeSpec, conv_norm_relu
from seg_research.modeling.sem_seg_heads import SEM_SEG_HEADS_REGISTRY, SemSegFPNHead

__all__ = ["FCNHead", "bilinear_upsampling_weight"]

_UPSAMPLES = ("learned", "bilinear")


def bilinear_upsampling_weight(channels: int, factor: int) -> torch.Tensor:
    """Weight (channels, channels, 2f - f % 2, 2f - f % 2) of a transposed conv (stride ``factor``)
    that upsamples each channel bilinearly by ``factor`` and does not mix channels (the FCN paper's
    initialisation of its deconvolution layers)."""
    size = 2 * factor - factor % 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = taps[:, None] * taps[None, :]
    return weight


@SEM_SEG_HEADS_REGISTRY.register()
class FCNHead(SemSegFPNHead):
    """FCN-32s / 16s / 8s decoder on 1 to 3 backbone features of strides s, 2s, 4s, ... (e.g.
    ``res3, res4, res5`` of a ResNet at strides 8, 16, 32):

    1. the deepest feature through two conv-norm-ReLU with dropout (the paper's fc6 / fc7:
       3×3 then 1×1, ``conv_dims`` channels) and a 1×1 conv to class scores;
    2. for each shallower feature, deepest first: the scores upsampled 2× (``upsample``:
       a transposed conv initialised to bilinear, or fixed bilinear), cropped to the feature's
       size, plus a 1×1 conv of that feature to class scores (zero-initialised, so training starts
       from the coarser net, as in the paper's staged training);
    3. the scores at the shallowest stride bilinearly upsampled to the input size (inference).

    One input feature is FCN-32s, two FCN-16s, three FCN-8s. The losses, the single-channel binary
    head (``num_classes=1`` with ``"bce_dice"``), the inference output and ``from_config`` are
    :class:`SemSegFPNHead`'s; only :meth:`layers` (features -> scores) is FCN's. Follows the
    SEM_SEG_HEADS interface (see ``SEM_SEG_HEADS_REGISTRY``).
    """

    @configurable
    def __init__(
        self,
        input_shape: Mapping[str, ShapeSpec],
        *,
        num_classes: int,
        conv_dims: int = 512,
        norm: str = "BN",
        upsample: str = "learned",
        dropout: float = 0.5,
        ignore_value: int = 255,
        loss_weight: float = 1.0,
        loss_types: Sequence[str] = ("cross_entropy",),
        loss_weights: Sequence[float] = (1.0,),
        loss_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
    ) -> None:
        """
        Args:
            input_shape: feature name -> ShapeSpec of 1 to 3 features whose strides double from
                one to the next (e.g. res3: 8, res4: 16, res5: 32).
            num_classes: C, the number of predicted classes (1: single-channel binary head).
            conv_dims: channels of the fc6 / fc7 convs.
            norm: norm after each of those convs ("" for none).
            upsample: "learned" or "bilinear" (step 2 of the class doc).
            dropout: dropout probability after fc6 and fc7.
            ignore_value, loss_weight, loss_types, loss_weights, loss_options: as in
                :class:`SemSegFPNHead`.
        """
        nn.Module.__init__(self)  # SemSegFPNHead's FPN layers are not built; its losses and output are used
        names = sorted(input_shape, key=lambda name: input_shape[name].stride)
        strides = [input_shape[name].stride for name in names]
        if not 1 <= len(names) <= 3 or any(b != 2 * a for a, b in zip(strides, strides[1:], strict=False)):
            raise ValueError(
                "FCNHead needs 1 to 3 input features (MODEL.SEM_SEG_HEAD.IN_FEATURES) whose strides double, e.g. "
                f"['res3', 'res4', 'res5'] (FCN-8s); got { {name: input_shape[name].stride for name in names} } "
                "(name: stride)."
            )
        if upsample not in _UPSAMPLES:
            raise ValueError(f"FCNHead upsample (MODEL.FCN.UPSAMPLE) must be one of {_UPSAMPLES}, got {upsample!r}.")
        self.in_features = names
        self.num_classes = num_classes
        self.common_stride = strides[0]
        self.ignore_value = ignore_value
        self.loss_weight = loss_weight
        self._loss_terms = self._build_loss_terms(num_classes, loss_types, loss_weights, loss_options or {})
        deepest = input_shape[names[-1]].channels
        self.fc = nn.Sequential(
            conv_norm_relu(deepest, conv_dims, 3, norm=norm), nn.Dropout2d(dropout),
            conv_norm_relu(conv_dims, conv_dims, 1, norm=norm), nn.Dropout2d(dropout),
        )
        self.score = nn.Conv2d(conv_dims, num_classes, 1)
        nn.init.normal_(self.score.weight, std=0.01)
        nn.init.zeros_(self.score.bias)
        self.skip_scores = nn.ModuleDict()
        self.upsamplers = nn.ModuleDict()
        for name in names[:-1]:
            skip = nn.Conv2d(input_shape[name].channels, num_classes, 1)
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)
            self.skip_scores[name] = skip
            if upsample == "learned":
                up = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
                with torch.no_grad():
                    up.weight.copy_(bilinear_upsampling_weight(num_classes, 2))
            else:
                up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.upsamplers[name] = up

    @classmethod
    def from_config(cls, cfg, input_shape: Mapping[str, ShapeSpec]) -> Dict[str, Any]:
        args = SemSegFPNHead.from_config(cfg, input_shape)  # IN_FEATURES, NUM_CLASSES, CONVS_DIM, NORM, losses
        del args["common_stride"]  # the shallowest feature's stride
        args.update(upsample=cfg.MODEL.FCN.UPSAMPLE, dropout=cfg.MODEL.FCN.DROPOUT)
        return args

    def layers(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Features (name -> (N, C_name, ~H / stride, ~W / stride)) -> float class scores
        (N, num_classes, h, w) at the shallowest input feature's size."""
        scores = self.score(self.fc(features[self.in_features[-1]]))
        for name in reversed(self.in_features[:-1]):
            skip = self.skip_scores[name](features[name])
            scores = self.upsamplers[name](scores)[..., : skip.shape[-2], : skip.shape[-1]] + skip
        return scores
