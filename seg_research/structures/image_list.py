"""``ImageList``: images of different sizes padded into one batch tensor, remembering each true size."""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple

import torch

__all__ = ["ImageList"]


class ImageList:
    """A padded batch of images.

    Attributes:
        tensor: (N, C, Hmax, Wmax) (or (N, Hmax, Wmax) for 2-D inputs); image ``i`` occupies the
            top-left ``image_sizes[i]`` corner, the rest is padding.
        image_sizes: (h, w) of each image before padding.
    """

    def __init__(self, tensor: torch.Tensor, image_sizes: List[Tuple[int, int]]) -> None:
        if len(image_sizes) != tensor.shape[0]:
            raise ValueError(f"ImageList got {len(image_sizes)} image sizes for a batch of {tensor.shape[0]} images.")
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx: int) -> torch.Tensor:
        """Image ``idx`` without padding: a (C, h, w) view of :attr:`tensor`."""
        height, width = self.image_sizes[idx]
        return self.tensor[idx, ..., :height, :width]

    def to(self, *args: Any, **kwargs: Any) -> "ImageList":
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors: Sequence[torch.Tensor], size_divisibility: int = 0, pad_value: float = 0.0
    ) -> "ImageList":
        """Pad images to a common size at the bottom/right and stack them.

        Args:
            tensors: images of shape (C, H_i, W_i) (or (H_i, W_i)), same C, dtype and device.
            size_divisibility: if > 0, the padded height and width are rounded up to a multiple
                of it (e.g. 32 for an FPN whose coarsest level has stride 32).
            pad_value: value of the padded pixels.

        Returns:
            ImageList with ``tensor`` of shape (N, C, Hmax, Wmax), where Hmax/Wmax are the largest
            H_i/W_i rounded up to ``size_divisibility``.
        """
        if len(tensors) == 0:
            raise ValueError("ImageList.from_tensors needs at least one image.")
        leading = tensors[0].shape[:-2]
        for i, image in enumerate(tensors):
            if not isinstance(image, torch.Tensor) or image.dim() not in (2, 3) or image.shape[:-2] != leading:
                shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
                raise ValueError(
                    f"ImageList.from_tensors: image {i} has shape {shape}; every image must be a (C, H, W) "
                    f"tensor with the same C as image 0 {tuple(tensors[0].shape)}."
                )
        image_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in tensors]
        max_height = max(h for h, _ in image_sizes)
        max_width = max(w for _, w in image_sizes)
        if size_divisibility > 0:
            max_height = -(-max_height // size_divisibility) * size_divisibility
            max_width = -(-max_width // size_divisibility) * size_divisibility
        batched = tensors[0].new_full((len(tensors), *leading, max_height, max_width), pad_value)
        for padded, image in zip(batched, tensors, strict=True):
            padded[..., : image.shape[-2], : image.shape[-1]].copy_(image)
        return ImageList(batched, image_sizes)
