"""Parameter counts of upstream Mask2Former's 57 image configs, for ``test_configs.py``: run once under
the measurement-only environment of ``../shared/anchors/mask2former_env.sh`` (detectron2 v0.6 + upstream
Mask2Former's Python code), never by the tests::

    OMP_NUM_THREADS=1 /work/d2venv/bin/python tests/projects/mask2former/make_param_counts.py

For every YAML under upstream's ``configs/`` except the video ones (``youtubevis_*``), the
``Base-*.yaml`` files included (they build detectron2's default model, a C4 R-CNN: a check that they
merge and that nothing of ours changes what they leave at the defaults), it merges the config into ``get_cfg()`` + ``add_deeplab_config`` +
``add_maskformer2_config`` as upstream's ``train_net.py`` does, builds the model on the CPU (upstream's
Swin calls ``.item()`` while building, which the meta device cannot do) and writes
``fixtures/param_counts.json.gz``: config path (relative to ``configs/``) -> number of parameters,
trainable parameters, parameters under each top-level child (``backbone``, ``sem_seg_head``), the
number of entries of its ``state_dict`` (parameters and buffers), ``layout``: the id of its state_dict's
names and shapes in ``"layouts"`` (configs that differ only in training settings share one), and ``config``:
every key whose merged value differs from the defaults, with that value (so the tests see that our copies of
the files, and our config, give upstream's values; ``!!python/object/apply:eval`` lists included).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "param_counts.json.gz")
UPSTREAM_CONFIGS = "/work/d2venv/mask2former-configs"


def image_configs(root: str) -> list:
    """The YAML files under ``root`` outside the video folders, sorted, relative to ``root``."""
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if name.endswith(".yaml") and not rel.startswith("youtubevis"):
                found.append(rel)
    return sorted(found)


def _flat(node, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if hasattr(value, "items"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, (tuple, list)) else value
    return out


def count(config: str, layouts: dict) -> dict:
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    defaults = _flat(cfg)
    cfg.merge_from_file(os.path.join(UPSTREAM_CONFIGS, config))
    merged = {k: v for k, v in _flat(cfg).items() if defaults.get(k, k) != v}
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    with torch.no_grad():
        model = build_model(cfg)
    shapes = {name: list(value.shape) for name, value in model.state_dict().items()}
    layout = hashlib.sha1(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:12]
    layouts[layout] = shapes
    return {
        "layout": layout,
        "num_params": sum(p.numel() for p in model.parameters()),
        "num_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "children": {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()},
        "num_state_dict_entries": len(model.state_dict()),
        "config": merged,
    }


def main() -> None:
    import torch

    torch.set_num_threads(1)
    configs = image_configs(UPSTREAM_CONFIGS)
    counts, layouts = {}, {}
    for config in configs:
        counts[config] = count(config, layouts)
        print(f"{config}: {counts[config]['num_params']:,}", file=sys.stderr)
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    text = json.dumps({"configs": counts, "layouts": layouts}, indent=1, sort_keys=True) + "\n"
    with gzip.GzipFile(FIXTURE, "wb", mtime=0) as f:  # mtime=0: the same bytes for the same counts
        f.write(text.encode())
    print(f"{FIXTURE}: {len(counts)} configs, {len(layouts)} state_dict layouts")


if __name__ == "__main__":
    main()
