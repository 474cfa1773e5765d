"""What the detectron2 parity fixtures are made of, shared by the test and by the script that made
them (``make_detectron2_fixtures.py``, run once under the measurement-only detectron2 v0.6 of
``../shared/anchors``): the input image, the generated weights and the inference settings.

Weights are not stored: every tensor is drawn from a generator seeded by its detectron2 name, so a
fixture keeps only the norm statistics (set from the image so that activations stay sane) and
detectron2's outputs.
"""
from __future__ import annotations

import zlib
from typing import Dict, Iterable, List, Tuple

import numpy as np

#: fixture name -> config file, the same name in detectron2's model zoo and in configs/.
CONFIGS = {
    "mask_rcnn_R_50_FPN": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
    "mask_rcnn_R_50_C4": "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml",
    "mask_rcnn_R_50_DC5": "COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_1x.yaml",
    "panoptic_fpn_R_50": "COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.yaml",
    "semantic_R_50_FPN": "Misc/semantic_R_50_FPN_1x.yaml",
}
#: config overrides applied on both sides.
OPTS = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.02]
IMAGE_HW = (192, 256)
#: detections whose masks are stored (the highest scoring ones).
NUM_MASKS = 10
#: every SEM_STRIDE-th pixel of the semantic logits is stored.
SEM_STRIDE = 8
_NORM_SUFFIXES = (".norm.weight", ".norm.bias", ".norm.running_mean", ".norm.running_var")


def make_image() -> np.ndarray:
    """(H, W, 3) uint8 BGR: smooth noise with a few bright rectangles and a disk (things to detect)."""
    rng = np.random.default_rng(0)
    h, w = IMAGE_HW
    coarse = rng.uniform(40, 200, size=(h // 16 + 1, w // 16 + 1, 3))
    image = np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
    for y0, x0, y1, x1, color in [(20, 30, 90, 110, (250, 40, 40)), (100, 140, 180, 240, (30, 220, 60)),
                                  (30, 170, 70, 230, (20, 30, 240))]:
        image[y0:y1, x0:x1] = color
    yy, xx = np.mgrid[:h, :w]
    image[(yy - 140) ** 2 + (xx - 60) ** 2 < 35 ** 2] = (200, 200, 30)
    return image.astype(np.uint8)


def generated_tensor(name: str, shape: Tuple[int, ...]) -> np.ndarray:
    """The weight of detectron2 parameter ``name``: normal with variance 1 / fan-in for
    convs/linears, small random biases, norm scales near 1 — near 0.2 for the last norm of a
    residual branch, so that the random network stays well conditioned (float rounding that
    differs between implementations is not amplified block after block). Deterministic in ``name``."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    if name.endswith(".norm.weight"):
        scale = 0.2 if name.endswith(".conv3.norm.weight") else 1.0
        return (scale * (1.0 + 0.1 * rng.standard_normal(shape))).astype(np.float32)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)
    return (0.05 * rng.standard_normal(shape)).astype(np.float32)


def generated_state_dict(keys_shapes: Iterable[Tuple[str, Tuple[int, ...]]],
                         norm_stats: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """detectron2-named state_dict: generated weights, then the stored norm statistics
    (``*.norm.running_mean`` / ``running_var``) over them."""
    state = {}
    for name, shape in keys_shapes:
        if name.endswith((".running_mean", ".running_var")):
            state[name] = norm_stats[name]
        else:
            state[name] = generated_tensor(name, tuple(shape))
    return state


def norm_stat_names(keys: Iterable[str]) -> List[str]:
    return [k for k in keys if k.endswith(_NORM_SUFFIXES[2:])]
