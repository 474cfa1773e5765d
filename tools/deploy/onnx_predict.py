#!/usr/bin/env python
"""Run an exported ONNX model on images with onnxruntime, numpy, Pillow and pycocotools only: it
imports neither torch nor seg_research, so it runs where the training stack is not installed.

    python tools/deploy/onnx_predict.py --model exported/ --input a.jpg photos/ 'more/*.png' \\
        --output results.json [--vis vis/] [--threads N]

``--model`` is the folder ``tools/export_model.py --format onnx --output`` wrote (``model.onnx``
and ``runtime.json``). Each image is read (EXIF orientation applied, grayscale/RGBA converted),
resized as the model was tested, run, and its outputs are brought back to the image's size
(boxes scaled, masks pasted, semantic logits resized, panoptic segments fused) exactly as the
PyTorch model does. ``results.json`` holds one entry per image::

    {"file_name": ..., "height": H, "width": W,
     "instances": [{"category_id", "bbox": [x, y, w, h] (original pixels), "score",
                    "segmentation": {"size": [H, W], "counts": compressed RLE}}, ...],
     "sem_seg": "<output dir>/sem_seg/<name>.png",            (models with a semantic output: class ids)
     "panoptic_seg": {"file_name": "<output dir>/panoptic/<name>.png", "segments_info": [...]}}

Category ids are the dataset's (the ``*_dataset_id_to_contiguous_id`` maps in runtime.json),
else contiguous ids. Panoptic PNGs follow COCO (id = R + 256 G + 256^2 B, 0 void). ``--vis``
writes each image with its predictions drawn. The runtime code is ``runtime.py``, found beside
this script (copy both to deploy) or in the repository's ``seg_research/export/``.
"""
import argparse
import glob
import importlib.util
import json
import os
import sys
from typing import Any, Dict, List, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from pycocotools import mask as mask_util

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def load_runtime() -> Any:
    """``runtime.py`` as a standalone module (not through the seg_research package, which imports torch)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "runtime.py"),
                 os.path.join(here, os.pardir, os.pardir, "seg_research", "export", "runtime.py")):
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("seg_onnx_runtime", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit(f"runtime.py not found beside {__file__} nor in seg_research/export/: copy "
                     "seg_research/export/runtime.py next to this script.")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="DIR", help="export folder (model.onnx, runtime.json)")
    parser.add_argument("--input", nargs="+", required=True, help="image files, folders or glob patterns")
    parser.add_argument("--output", required=True, metavar="FILE", help="results JSON")
    parser.add_argument("--vis", default=None, metavar="DIR", help="also write the images with predictions drawn")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    return parser.parse_args(argv)


def expand_inputs(inputs: List[str]) -> List[str]:
    """Files as given, folders as their image files (sorted), glob patterns as their matches (sorted)."""
    paths: List[str] = []
    for item in inputs:
        if os.path.isdir(item):
            paths += sorted(os.path.join(item, f) for f in os.listdir(item) if f.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.isfile(item):
            paths.append(item)
        else:
            matches = sorted(glob.glob(os.path.expanduser(item)))
            if not matches:
                print(f"--input '{item}' matches no file.", file=sys.stderr)
            paths += [m for m in matches if os.path.isfile(m)]
    return paths


def read_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, EXIF orientation applied (as the library's ``read_image``)."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _inverse(pairs: Optional[List[List[int]]]) -> Dict[int, int]:
    return {contiguous: dataset_id for dataset_id, contiguous in pairs or []}


def _unique_name(folder: str, path: str, suffix: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    candidate, n = os.path.join(folder, stem + suffix), 1
    while os.path.exists(candidate):
        candidate, n = os.path.join(folder, f"{stem}_{n}{suffix}"), n + 1
    return candidate


def image_results(path: str, image_h: int, image_w: int, outputs: Dict[str, Any], metadata: Dict[str, Any],
                  out_dir: str) -> Dict[str, Any]:
    """One image's entry of results.json (see the module doc); writes its PNGs under ``out_dir``."""
    entry: Dict[str, Any] = {"file_name": path, "height": image_h, "width": image_w}
    things = _inverse(metadata.get("thing_dataset_id_to_contiguous_id"))
    stuff = _inverse(metadata.get("stuff_dataset_id_to_contiguous_id"))
    if "instances" in outputs:
        inst = outputs["instances"]
        records = []
        for i in range(len(inst["scores"])):
            x0, y0, x1, y1 = (float(v) for v in inst["boxes"][i])
            record = {"category_id": things.get(int(inst["classes"][i]), int(inst["classes"][i])),
                      "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(inst["scores"][i])}
            if "masks" in inst:
                rle = mask_util.encode(np.asfortranarray(inst["masks"][i].astype(np.uint8)))
                record["segmentation"] = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
            records.append(record)
        entry["instances"] = records
    if "panoptic_seg" in outputs:
        ids, segments = outputs["panoptic_seg"]
        folder = os.path.join(out_dir, "panoptic")
        os.makedirs(folder, exist_ok=True)
        png = _unique_name(folder, path, ".png")
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).save(png)
        info = []
        for s in segments:
            mapping = things if s["isthing"] else stuff
            info.append({**{k: v for k, v in s.items() if k != "instance_id"},
                         "category_id": mapping.get(s["category_id"], s["category_id"])})
        entry["panoptic_seg"] = {"file_name": png, "segments_info": info}
    if "sem_seg" in outputs:
        folder = os.path.join(out_dir, "sem_seg")
        os.makedirs(folder, exist_ok=True)
        png = _unique_name(folder, path, ".png")
        labels = outputs["sem_seg"].argmax(axis=0)
        Image.fromarray(labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16)).save(png)
        entry["sem_seg"] = png
    return entry


def _color(index: int) -> np.ndarray:
    """A distinct, deterministic colour per index (golden-ratio hue steps)."""
    hue = (index * 0.618033988749895) % 1.0
    rgb = np.array([abs(hue * 6 - 3) - 1, 2 - abs(hue * 6 - 2), 2 - abs(hue * 6 - 4)])
    return (np.clip(rgb, 0, 1) * 200 + 55).astype(np.uint8)


def draw(image: np.ndarray, outputs: Dict[str, Any], metadata: Dict[str, Any]) -> Image.Image:
    """The RGB image with the predictions: panoptic segments or semantic classes as coloured
    regions, instances as masks, boxes and ``name score`` labels."""
    canvas = image.astype(np.float32)
    if "panoptic_seg" in outputs or "sem_seg" in outputs:
        labels = outputs["panoptic_seg"][0] if "panoptic_seg" in outputs else outputs["sem_seg"].argmax(axis=0)
        for value in np.unique(labels):
            if "panoptic_seg" in outputs and value == 0:
                continue
            region = labels == value
            canvas[region] = canvas[region] * 0.5 + _color(int(value)) * 0.5
    labels_to_draw = []
    if "instances" in outputs and "panoptic_seg" not in outputs:
        inst = outputs["instances"]
        names = metadata.get("thing_classes") or []
        for i in range(len(inst["scores"])):
            color = _color(int(inst["classes"][i]) + 1)
            if "masks" in inst:
                canvas[inst["masks"][i]] = canvas[inst["masks"][i]] * 0.5 + color * 0.5
            cls = int(inst["classes"][i])
            name = names[cls] if cls < len(names) else str(cls)
            labels_to_draw.append((inst["boxes"][i], f"{name} {inst['scores'][i]:.2f}", tuple(int(c) for c in color)))
    result = Image.fromarray(canvas.astype(np.uint8))
    pen = ImageDraw.Draw(result)
    for box, text, color in labels_to_draw:
        pen.rectangle([float(v) for v in box], outline=color)
        pen.text((float(box[0]) + 2, float(box[1]) + 1), text, fill=color)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    runtime = load_runtime()
    model = runtime.OnnxRuntimeModel(args.model, args.threads)
    paths = expand_inputs(args.input)
    if not paths:
        print(f"No input image found in {args.input}.", file=sys.stderr)
        return 1
    out_dir = os.path.dirname(os.path.abspath(args.output))
    results, failed = [], []
    for path in paths:
        try:
            image = read_rgb(path)
        except OSError as e:
            print(f"Skipped {path}: cannot read it as an image ({e}).", file=sys.stderr)
            failed.append(path)
            continue
        outputs = model(image, channel_order="RGB")
        results.append(image_results(path, image.shape[0], image.shape[1], outputs, model.metadata, out_dir))
        if args.vis:
            os.makedirs(args.vis, exist_ok=True)
            draw(image, outputs, model.metadata).save(_unique_name(args.vis, path, ".png"))
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(results, f)
    print(f"Wrote {len(results)} results to {args.output}" + (f"; skipped {len(failed)}: {failed}" if failed else ""))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
