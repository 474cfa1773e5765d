"""The input path every meta-architecture shares: normalize the images, pad them into one batch to
the model's size divisibility, and report the size each output must be brought back to.

The network in between and the postprocessing of its outputs (:mod:`.postprocessing`) are the
meta-architecture's own; only this bracket around them is common, so the model I/O contract
(``image`` (C, H, W) 0-255 in ``INPUT.FORMAT`` order, optional ``height``/``width``) lives here once.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch

from ..structures import ImageList

__all__ = ["ImageInputMixin", "requested_size"]


def requested_size(inputs: Mapping[str, Any], image_size: Tuple[int, int]) -> Tuple[int, int]:
    """(height, width) an input asks its outputs to be returned at: the record's ``height`` and
    ``width`` (its original size) when present, else ``image_size``, the (h, w) of the network
    input before padding."""
    return inputs.get("height", image_size[0]), inputs.get("width", image_size[1])


class ImageInputMixin:
    """Normalization and batching for an ``nn.Module`` meta-architecture.

    The subclass calls :meth:`register_pixel_normalization` in its ``__init__`` and then uses
    :meth:`preprocess_image` on the batched inputs, :meth:`pad_targets` on per-pixel training
    targets (padded exactly as the images) and :func:`requested_size` for each output's size.

    Padding follows :attr:`padding_constraints`: the ``backbone``'s by default; a model without a
    backbone overrides it.
    """

    #: Store the padded batch channels-last on the CPU (oneDNN's native layout: no conversion
    #: around each convolution, and ROI poolers read the features without a transposing copy).
    #: Values are unchanged; models whose layers gain nothing from it leave it off.
    channels_last_on_cpu: bool = False

    def register_pixel_normalization(self, pixel_mean: Sequence[float], pixel_std: Sequence[float]) -> None:
        """Register ``pixel_mean``/``pixel_std`` (per channel, 0-255 scale, in the images' channel
        order) as float32 (C, 1, 1) non-persistent buffers, so they follow ``.to(device)``."""
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(f"pixel_mean {list(pixel_mean)} and pixel_std {list(pixel_std)} differ in length.")
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def padding_constraints(self) -> Dict[str, int]:
        """Keyword arguments of :meth:`ImageList.from_tensors` that make a padded batch valid input."""
        return self.backbone.padding_constraints

    def preprocess_image(self, batched_inputs: List[Dict[str, Any]]) -> ImageList:
        """Each ``image`` moved to the model's device as float32, normalized ``(x - mean) / std``,
        and padded at the bottom/right into one (N, C, H_pad, W_pad) batch; ``image_sizes`` keeps
        each (h, w) before padding."""
        images = [(x["image"].to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, **self.padding_constraints)
        if self.channels_last_on_cpu and self.device.type == "cpu" and images.tensor.dim() == 4:
            images.tensor = images.tensor.contiguous(memory_format=torch.channels_last)
        return images

    def pad_targets(self, batched_inputs: List[Dict[str, Any]], key: str, pad_value: float) -> torch.Tensor:
        """The per-pixel targets ``x[key]`` ((H, W) each, e.g. int64 ``sem_seg``) on the model's device,
        padded with ``pad_value`` to the (N, H_pad, W_pad) of :meth:`preprocess_image`'s batch."""
        targets = [x[key].to(self.device) for x in batched_inputs]
        return ImageList.from_tensors(targets, pad_value=pad_value, **self.padding_constraints).tensor
