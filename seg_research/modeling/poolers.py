"""Multi-level RoIAlign: each box is pooled from the FPN level that fits its size."""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.ops.poolers import LevelMapper

from ..layers.roi_align import multilevel_roi_align, roi_align
from ..structures import Boxes

__all__ = ["ROIPooler", "POOLER_TYPES"]

#: POOLER_TYPE -> ``aligned`` argument of ``torchvision.ops.roi_align``. "ROIAlignV2" shifts
#: box coordinates by -0.5 px so pixel centres are sampled exactly (detectron2's default);
#: "ROIAlign" does not (torchvision's Mask R-CNN).
POOLER_TYPES = {"ROIAlign": False, "ROIAlignV2": True}


def boxes_to_rois(box_lists: List[Boxes]) -> torch.Tensor:
    """float (R, 5) rows ``(image index, x0, y0, x1, y1)`` of the boxes of all images, in order."""
    return torch.cat(
        [torch.cat([b.tensor.new_full((len(b), 1), float(i)), b.tensor], dim=1) for i, b in enumerate(box_lists)]
    )


class ROIPooler(nn.Module):
    """Pool a fixed-size feature patch for every box from a list of feature levels.

    A box of area ``A`` goes to level ``floor(canonical_level + log2(sqrt(A) / canonical_box_size))``
    (FPN paper, eq. 1; torchvision's ``LevelMapper``), clamped to the available levels.
    """

    def __init__(
        self,
        output_size: Union[int, Tuple[int, int]],
        scales: Sequence[float],
        sampling_ratio: int,
        pooler_type: str,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ) -> None:
        """
        Args:
            output_size: side (or (height, width)) of each pooled patch.
            scales: 1 / stride of each level, finest first; consecutive levels differ by 2x.
            sampling_ratio: sampling points per bin side (0: adaptive, ceil(roi side / output side)).
            pooler_type: "ROIAlignV2" (aligned=True) or "ROIAlign" (aligned=False).
            canonical_box_size, canonical_level: a box of this side goes to this level.
        """
        super().__init__()
        if pooler_type not in POOLER_TYPES:
            raise ValueError(f"Unknown POOLER_TYPE '{pooler_type}'; use one of {sorted(POOLER_TYPES)}.")
        levels = [-math.log2(s) for s in scales]
        if any(abs(lv - round(lv)) > 1e-6 for lv in levels) or any(
            round(b) - round(a) != 1 for a, b in zip(levels, levels[1:], strict=False)
        ):
            raise ValueError(f"ROIPooler scales {list(scales)} must be 1/2**k for consecutive k (e.g. 1/4, 1/8, ...).")
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        self.scales = [float(s) for s in scales]
        self.sampling_ratio = sampling_ratio
        self.aligned = POOLER_TYPES[pooler_type]
        self.level_mapper = LevelMapper(round(levels[0]), round(levels[-1]), canonical_box_size, canonical_level)

    def forward(self, features: List[torch.Tensor], box_lists: List[Boxes]) -> torch.Tensor:
        """
        Args:
            features: per level, (N, C, H_l, W_l) maps, in the order of ``scales``.
            box_lists: per image, its boxes (XYXY absolute pixels of the padded input).

        Returns:
            (R, C, output_h, output_w) patches, R = total number of boxes, in image then box order.
        """
        if len(features) != len(self.scales):
            raise ValueError(f"ROIPooler got {len(features)} feature levels but has {len(self.scales)} scales.")
        # box coordinates stay float32 under autocast (bfloat16 would round 500 px to 2 px steps)
        rois = boxes_to_rois(box_lists).to(torch.promote_types(features[0].dtype, torch.float32))
        if len(self.scales) == 1:
            return self._pool(features[0], rois, self.scales[0])
        level_of_box = self.level_mapper([b.tensor for b in box_lists])
        if features[0].device.type == "cpu":  # one sparse product over all levels
            return multilevel_roi_align(features, rois, level_of_box.long(), self.output_size, self.scales,
                                        self.sampling_ratio, self.aligned)
        output = features[0].new_zeros((len(rois), features[0].shape[1], *self.output_size))
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            index = (level_of_box == level).nonzero().squeeze(1)
            output[index] = self._pool(feature, rois[index], scale)
        return output

    def _pool(self, feature: torch.Tensor, rois: torch.Tensor, scale: float) -> torch.Tensor:
        return roi_align(feature, rois, self.output_size, spatial_scale=scale, sampling_ratio=self.sampling_ratio,
                         aligned=self.aligned)
