"""The input path shared by the meta-architectures (seg_research.modeling.image_input)."""
import os
import sys

import pytest
import torch
from torch import nn

from seg_research.modeling.image_input import ImageInputMixin, requested_size
from seg_research.modeling.meta_arch import GeneralizedRCNN, PanopticFPN, SemanticSegmentor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "helpers"))
from tiny_semseg import TinySemSegNet  # noqa: E402  (tests/helpers: the test model)


class _Model(ImageInputMixin, nn.Module):
    def __init__(self, channels_last: bool = False) -> None:
        super().__init__()
        self.channels_last_on_cpu = channels_last
        self.register_pixel_normalization([10.0, 20.0], [2.0, 4.0])

    @property
    def padding_constraints(self):
        return {"size_divisibility": 4}


def _inputs():
    return [{"image": torch.full((2, 5, 3), 30, dtype=torch.uint8), "sem_seg": torch.ones(5, 3, dtype=torch.int64)},
            {"image": torch.full((2, 2, 6), 10, dtype=torch.uint8), "sem_seg": torch.zeros(2, 6, dtype=torch.int64),
             "height": 4, "width": 12}]


def test_preprocess_normalizes_and_pads_to_the_size_divisibility():
    images = _Model().preprocess_image(_inputs())
    assert images.tensor.shape == (2, 2, 8, 8) and images.tensor.dtype == torch.float32
    assert images.image_sizes == [(5, 3), (2, 6)]
    assert images.tensor[0, :, :5, :3].flatten(1).unique(dim=1).tolist() == [[10.0], [2.5]]  # (30-10)/2, (30-20)/4
    assert images.tensor[1, :, :2, :6].flatten(1).unique(dim=1).tolist() == [[0.0], [-2.5]]
    assert images.tensor[0, :, 5:].abs().sum() == 0 and images.tensor[1, :, :, 6:].abs().sum() == 0


@pytest.mark.parametrize("channels_last", [False, True])
def test_channels_last_only_where_asked(channels_last):
    tensor = _Model(channels_last).preprocess_image(_inputs()).tensor
    assert tensor.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_targets_padded_like_the_images_with_the_ignore_value():
    targets = _Model().pad_targets(_inputs(), "sem_seg", 255)
    assert targets.shape == (2, 8, 8) and targets.dtype == torch.int64
    assert int((targets[0] == 1).sum()) == 15 and int((targets[0] == 255).sum()) == 64 - 15
    assert int((targets[1] == 0).sum()) == 12 and int((targets[1] == 255).sum()) == 64 - 12


def test_requested_size_is_the_record_size_else_the_input_size():
    first, second = _inputs()
    assert requested_size(first, (5, 3)) == (5, 3)
    assert requested_size(second, (2, 6)) == (4, 12)


def test_unequal_normalization_lengths_are_refused():
    model = nn.Module()
    with pytest.raises(ValueError, match=r"pixel_mean \[1.0\] and pixel_std \[1.0, 2.0\] differ in length"):
        ImageInputMixin.register_pixel_normalization(model, [1.0], [1.0, 2.0])


def test_every_meta_architecture_takes_this_input_path():
    for cls in (GeneralizedRCNN, PanopticFPN, SemanticSegmentor, TinySemSegNet):
        assert issubclass(cls, ImageInputMixin)
        assert "preprocess_image" not in vars(cls) and "register_pixel_normalization" not in vars(cls)
    assert GeneralizedRCNN.channels_last_on_cpu and PanopticFPN.channels_last_on_cpu
    assert not SemanticSegmentor.channels_last_on_cpu and not TinySemSegNet.channels_last_on_cpu
