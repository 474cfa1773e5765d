#!/usr/bin/env python
"""Merge every detectron2 YAML config of a folder into seg_research's ``get_cfg()`` and build it.

For each ``*.yaml`` under ``--configs`` (detectron2's ``configs/`` or ``model_zoo/configs/``,
byte for byte), one line: ``ok <parameters>``, ``unsupported <key>`` (a detectron2 feature
seg_research does not build, refused by name) or ``FAIL <reason>``. Files with Python YAML tags
(``Base-RetinaNet.yaml``) are first checked to be refused without ``allow_unsafe``, then merged with it.

With ``--expected`` (``tests/config/fixtures/d2_configs.json.gz``, written by detectron2 v0.6 itself
through ``tests/config/make_d2_config_fixtures.py``) every merged key and value is compared with
detectron2's (all but MODEL.DEVICE) and every parameter count with detectron2's model::

    python tools/check_detectron2_configs.py --configs /path/to/detectron2/configs \\
        --expected tests/config/fixtures/d2_configs.json.gz

Models are built on torch's "meta" device: shapes and counts without memory or initialisation time.
Exit status 1 if any file fails.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch

from seg_research.config import ConfigError, get_cfg
from seg_research.config.unsupported import UnsupportedConfigError
from seg_research.modeling import build_model

__all__ = ["check_config", "check_folder", "encode_value", "flatten_cfg", "main"]

#: the one key whose default differs from detectron2's by design (README: "Defaults").
IGNORED_KEYS = ("MODEL.DEVICE",)


def encode_value(value: Any) -> Any:
    """JSON form of a config value that keeps tuples apart from lists: ``{"tuple": [...]}``."""
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    return value


def flatten_cfg(node: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"MODEL.RPN.IN_FEATURES": [...], ...}``: every leaf of a config, encoded by :func:`encode_value`."""
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(flatten_cfg(value, prefix + key + "."))
        else:
            out[prefix + key] = encode_value(value)
    return out


def _merge(path: str) -> Tuple[Any, bool]:
    """``get_cfg()`` with ``path`` merged, and whether that needed ``allow_unsafe`` (Python YAML tags)."""
    cfg = get_cfg()
    try:
        cfg.merge_from_file(path)
        return cfg, False
    except ConfigError as e:
        if "allow_unsafe=True" not in str(e):
            raise
    cfg = get_cfg()
    cfg.merge_from_file(path, allow_unsafe=True)
    return cfg, True


def check_config(path: str, expected: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Merge and build one file. Returns ``{"status": "ok" | "unsupported" | "FAIL", "detail": str,
    "num_params": int | None}``; with ``expected`` (the fixture's entry for this file) the merged
    values and the parameter count must equal detectron2's for "ok"."""
    try:
        cfg, python_tagged = _merge(path)
    except Exception as e:  # noqa: BLE001 - reported per file, the check goes on
        return {"status": "FAIL", "detail": f"merge: {type(e).__name__}: {e}", "num_params": None}
    problems: List[str] = []
    if expected is not None:
        ours = flatten_cfg(cfg)
        for key, value in expected["merged"].items():
            if key in IGNORED_KEYS:
                continue
            if key not in ours:
                problems.append(f"{key} missing")
            elif ours[key] != value:
                problems.append(f"{key} = {ours[key]!r}, detectron2 {value!r}")
        if expected.get("python_tag") and not python_tagged:
            problems.append("has Python tags but merged without allow_unsafe")
    cfg.MODEL.DEVICE = "meta"
    try:
        with torch.device("meta"):
            model = build_model(cfg)
    except UnsupportedConfigError as e:
        return {"status": "unsupported" if not problems else "FAIL",
                "detail": "; ".join(problems + [str(e)]), "num_params": None}
    except Exception as e:  # noqa: BLE001
        return {"status": "FAIL", "detail": "; ".join(problems + [f"build: {type(e).__name__}: {e}"]),
                "num_params": None}
    num_params = sum(p.numel() for p in model.parameters())
    if expected is not None and num_params != expected.get("num_params"):
        problems.append(f"{num_params} parameters, detectron2 {expected.get('num_params')}")
    return {"status": "FAIL" if problems else "ok", "detail": "; ".join(problems), "num_params": num_params}


def check_folder(folder: str, expected_files: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, Any]]:
    """:func:`check_config` for every ``*.yaml`` under ``folder``, keyed by relative path."""
    results = {}
    for root, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            if name.endswith(".yaml"):
                rel = os.path.relpath(os.path.join(root, name), folder)
                expected = None if expected_files is None else expected_files.get(rel)
                if expected_files is not None and expected is None:
                    results[rel] = {"status": "FAIL", "detail": "not in --expected", "num_params": None}
                    continue
                results[rel] = check_config(os.path.join(root, name), expected)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", required=True, help="detectron2's configs/ (or model_zoo/configs/) folder")
    parser.add_argument("--expected", help="d2_configs.json.gz written by tests/config/make_d2_config_fixtures.py")
    args = parser.parse_args(argv)
    expected_files = None
    if args.expected:
        with gzip.open(args.expected, "rt") as f:
            expected_files = json.load(f)["files"]
    results = check_folder(args.configs, expected_files)
    for rel, r in results.items():
        count = "" if r["num_params"] is None else f" {r['num_params']}"
        print(f"{r['status']:<11} {rel}{count}  {r['detail']}".rstrip())
    counts = {s: sum(r["status"] == s for r in results.values()) for s in ("ok", "unsupported", "FAIL")}
    print(f"{len(results)} files: {counts['ok']} ok, {counts['unsupported']} unsupported, {counts['FAIL']} FAIL")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
