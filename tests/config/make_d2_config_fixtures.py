"""Writes tests/config/fixtures/d2_configs.json.gz: detectron2 v0.6's ``get_cfg()`` and its 92 model-zoo
YAML files (the keys and values each file sets, the config each gives merged into ``get_cfg()``, and the
parameter count of the model each builds). Run once under the measurement-only detectron2 of
``../shared/anchors`` (never by the tests, never a dependency), from outside the repository::

    cd /tmp && /work/d2venv/bin/python /work/main/tests/config/make_d2_config_fixtures.py
"""
import gzip
import json
import os

import torch
import yaml
from detectron2.config import get_cfg
from detectron2.modeling import build_model

CONFIGS = os.path.join(os.path.dirname(get_cfg.__code__.co_filename), "..", "model_zoo", "configs")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "d2_configs.json.gz")


def encode(value):
    """JSON for a config value that keeps tuples apart from lists: {"tuple": [...]}."""
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def flatten(node, prefix=""):
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(flatten(value, prefix + key + "."))
        else:
            out[prefix + key] = encode(value)
    return out


def main():
    torch.set_num_threads(1)
    files = {}
    for root, _, names in os.walk(CONFIGS):
        for name in sorted(names):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, CONFIGS)
            text = open(path).read()
            entry = {"python_tag": "!!python" in text, "content": encode(yaml.unsafe_load(text))}
            cfg = get_cfg()
            cfg.merge_from_file(path, allow_unsafe=True)
            entry["merged"] = flatten(cfg)
            cfg.MODEL.DEVICE = "cpu"
            try:
                with torch.no_grad():
                    model = build_model(cfg)
                entry["num_params"] = sum(p.numel() for p in model.parameters())
                del model
            except Exception as e:  # noqa: BLE001 - recorded: which files detectron2 itself cannot build here
                entry["build_error"] = f"{type(e).__name__}: {e}"
            files[rel] = entry
            print(rel, entry.get("num_params", entry.get("build_error")), flush=True)
    data = {"source": "detectron2 v0.6 (pb1-detectron2 0.6 sdist, ../shared/anchors/anchor_env.sh), "
                      "tests/config/make_d2_config_fixtures.py",
            "get_cfg": flatten(get_cfg()), "files": files}
    with gzip.open(OUT, "wt") as f:
        json.dump(data, f, indent=0, sort_keys=True)


if __name__ == "__main__":
    main()
