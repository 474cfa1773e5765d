"""maybe_add_gradient_clipping on an optimizer instance (detectron2 allows it; upstream Mask2Former's
train_net.py passes one when SOLVER.CLIP_GRADIENTS.CLIP_TYPE is not "full_model")."""
import torch

from seg_research.config import get_cfg
from seg_research.solver import maybe_add_gradient_clipping


def _cfg(enabled):
    cfg = get_cfg()
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = enabled
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 0.5
    return cfg


def test_instance_clips_its_step():
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    same = maybe_add_gradient_clipping(_cfg(True), optimizer)
    assert same is optimizer and isinstance(optimizer, torch.optim.SGD)
    weight.grad = torch.tensor([2.0, -0.25, -3.0])
    optimizer.step()  # gradients clamped to [-0.5, 0.5], then w -= 1.0 * grad
    assert weight.detach().tolist() == [-0.5, 0.25, 0.5]


def test_instance_left_alone_when_disabled():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert maybe_add_gradient_clipping(_cfg(False), optimizer) is optimizer and type(optimizer) is torch.optim.SGD
