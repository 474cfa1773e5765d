"""Test helpers at detectron2's ``utils.testing`` path."""
from __future__ import annotations

import torch

from .absent import absent_names

__all__ = ["random_boxes"]


def random_boxes(num_boxes: int, max_coord: int = 100, device: str = "cpu") -> torch.Tensor:
    """(num_boxes, 4) float XYXY boxes with ``0 <= x0 <= x1 <= max_coord`` (same for y); some may be empty."""
    corners = torch.rand(num_boxes, 4, device=device) * max_coord
    return torch.cat([torch.minimum(corners[:, :2], corners[:, 2:]), torch.maximum(corners[:, :2], corners[:, 2:])],
                     dim=1)


_SCRIPTING = "TorchScript export of models is not supported (models take and return Python dicts)."
__getattr__ = absent_names(__name__, {
    "assert_instances_allclose": "not provided; compare fields with torch.testing.assert_close(a.get(k), b.get(k)) "
                                 "over a.get_fields() (Boxes: .tensor).",
    "convert_scripted_instances": _SCRIPTING,
    "reload_script_model": _SCRIPTING,
    "get_model_no_weights": "use model_zoo.get(config_path, trained=False) or build_model(cfg) after get_cfg() + "
                            "merge_from_file.",
    "get_sample_coco_image": "not provided (no downloads in tests); generate an image with the Shapes dataset: "
                             "DatasetCatalog.get('shapes_val')[0]['file_name'].",
})
