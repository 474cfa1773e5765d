"""The numpy runtime (seg_research/export/runtime.py) computes what the library computes around the
exported graph: each function against the library's own (the reference) and small hand-made cases."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

from seg_research.data.transforms import ResizeShortestEdge, ResizeTransform
from seg_research.export import runtime
from seg_research.layers import paste_masks_in_image
from seg_research.modeling.panoptic_fusion import combine_semantic_and_instance_outputs
from seg_research.structures import Boxes, Instances

RUNTIME_PY = runtime.__file__


def test_runtime_module_imports_neither_torch_nor_seg_research():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('rt', {RUNTIME_PY!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'seg_research', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_paste_by_hand():
    # a 2x2 mask of ones on the box [1, 1, 3, 3] of a 4x4 image: the box's 4 pixels are inside
    # (value 1), the ring around them interpolates towards the zero outside the mask
    masks = np.ones((1, 2, 2), dtype=np.float32)
    pasted = runtime.paste_masks(masks, np.array([[1.0, 1.0, 3.0, 3.0]]), 4, 4)
    expected = np.zeros((4, 4), dtype=bool)
    expected[1:3, 1:3] = True
    assert (pasted[0] == expected).all()


def test_paste_matches_the_library():
    rng = np.random.default_rng(0)
    masks = rng.uniform(0, 1, (12, 28, 28)).astype(np.float32)
    corners = rng.uniform(-5, 90, (12, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0.3, 40, (12, 2))], axis=1).astype(np.float32)
    boxes[0] = [10.2, 5.7, 10.2, 30.0]  # zero width
    expected = paste_masks_in_image(torch.from_numpy(masks), torch.from_numpy(boxes), (70, 95)).numpy()
    ours = runtime.paste_masks(masks, boxes, 70, 95)
    assert ours.shape == expected.shape
    assert (ours != expected).sum() <= 2  # float rounding at the 0.5 threshold, if anywhere


def test_resize_logits_matches_interpolate():
    logits = torch.randn(5, 17, 23, generator=torch.Generator().manual_seed(0))
    for size in [(40, 31), (9, 11), (17, 23)]:
        expected = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0].numpy()
        np.testing.assert_allclose(runtime.resize_logits(logits.numpy(), *size), expected, atol=1e-5)


def test_resize_matches_resize_shortest_edge():
    rng = np.random.default_rng(1)
    for h, w in [(480, 640), (37, 91), (192, 192), (300, 120)]:
        assert runtime.resize_shape(h, w, 192, 250) == ResizeShortestEdge.get_output_shape(h, w, 192, 250)
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        new_h, new_w = runtime.resize_shape(h, w, 192, 250)
        expected = ResizeTransform(h, w, new_h, new_w).apply_image(image)
        assert np.array_equal(runtime.resize_image(image, {"short_edge": 192, "max_size": 250}), expected)
    assert runtime.resize_image(image, None) is image


def test_panoptic_fusion_matches_the_library():
    rng = np.random.default_rng(2)
    height, width, num = 30, 40, 6
    masks = np.zeros((num, height, width), dtype=bool)
    for i in range(num):
        y, x = rng.integers(0, 25), rng.integers(0, 35)
        masks[i, y:y + rng.integers(3, 15), x:x + rng.integers(3, 15)] = True
    masks[3] = masks[1]  # fully covered by a better instance: dropped by the overlap rule
    scores = np.array([0.9, 0.95, 0.3, 0.5, 0.05, 0.7], dtype=np.float32)
    classes = np.array([0, 1, 2, 1, 0, 2])
    logits = rng.standard_normal((4, height, width)).astype(np.float32)
    instances = Instances((height, width), scores=torch.from_numpy(scores), pred_classes=torch.from_numpy(classes),
                          pred_masks=torch.from_numpy(masks), pred_boxes=Boxes(torch.zeros(num, 4)))
    expected_ids, expected_info = combine_semantic_and_instance_outputs(instances, torch.from_numpy(logits),
                                                                         0.5, 20, 0.1)
    ids, info = runtime.combine_panoptic(masks, scores, classes, logits, 0.5, 20, 0.1)
    assert np.array_equal(ids, expected_ids.numpy())
    assert [{k: v for k, v in s.items() if k != "score"} for s in info] == \
        [{k: v for k, v in s.items() if k != "score"} for s in expected_info]
    np.testing.assert_allclose([s["score"] for s in info], [s["score"] for s in expected_info], rtol=1e-5)


def test_onnx_predict_finds_the_runtime_beside_or_in_the_repository():
    script = os.path.join(os.path.dirname(RUNTIME_PY), os.pardir, os.pardir, "tools", "deploy", "onnx_predict.py")
    spec = importlib.util.spec_from_file_location("onnx_predict", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert os.path.samefile(module.load_runtime().__file__, RUNTIME_PY)
