import pytest
import torch

from seg_research.structures import ImageList


def _images():
    a = torch.arange(3 * 20 * 30, dtype=torch.float32).reshape(3, 20, 30)
    b = torch.ones(3, 33, 25)
    return a, b


def test_padding_with_divisibility_32_and_pad_value():
    a, b = _images()
    batch = ImageList.from_tensors([a, b], size_divisibility=32, pad_value=-1.0)
    assert batch.tensor.shape == (2, 3, 64, 32)
    assert batch.image_sizes == [(20, 30), (33, 25)]
    assert len(batch) == 2
    assert torch.equal(batch.tensor[0, :, :20, :30], a)
    assert (batch.tensor[0, :, 20:, :] == -1).all() and (batch.tensor[0, :, :, 30:] == -1).all()
    assert (batch.tensor[1, :, 33:, :] == -1).all() and (batch.tensor[1, :, :, 25:] == -1).all()
    assert (batch.tensor == -1).sum() == 3 * (64 * 32 - 20 * 30) + 3 * (64 * 32 - 33 * 25)


def test_without_divisibility_pads_to_largest():
    a, b = _images()
    batch = ImageList.from_tensors([a, b])
    assert batch.tensor.shape == (2, 3, 33, 30)
    assert batch.tensor[1, 0, 0, 25:].tolist() == [0.0] * 5


def test_getitem_returns_unpadded_view():
    a, b = _images()
    batch = ImageList.from_tensors([a, b], size_divisibility=32)
    assert batch[1].shape == (3, 33, 25)
    assert torch.equal(batch[0], a)
    assert batch[0].data_ptr() == batch.tensor.data_ptr()


def test_exact_multiple_is_not_padded_and_2d_images():
    batch = ImageList.from_tensors([torch.zeros(32, 64), torch.zeros(16, 8)], size_divisibility=32)
    assert batch.tensor.shape == (2, 32, 64)
    assert batch[1].shape == (16, 8)


def test_to_and_device():
    a, b = _images()
    batch = ImageList.from_tensors([a, b]).to(torch.float64)
    assert batch.tensor.dtype == torch.float64
    assert batch.device == torch.device("cpu")
    assert batch.image_sizes == [(20, 30), (33, 25)]


def test_errors():
    with pytest.raises(ValueError, match="at least one"):
        ImageList.from_tensors([])
    with pytest.raises(ValueError, match=r"image 1 has shape \(1, 5, 5\)"):
        ImageList.from_tensors([torch.zeros(3, 5, 5), torch.zeros(1, 5, 5)])
