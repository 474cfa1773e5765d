"""tools/demo.py, tools/visualize.py, tools/plot_metrics.py, DefaultPredictor and saved semantic predictions.

The model is a randomly initialised TinySemSegNet saved with Checkpointer; its evaluation on
``shapes_val_sem_seg`` runs in-process. Each tool's command line runs once as a subprocess;
the other modes of a tool are called in-process through its ``main(argv)``.
"""
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import seg_research.data.datasets.builtin  # noqa: F401
from seg_research.checkpoint import Checkpointer
from seg_research.config import get_cfg
from seg_research.data import DatasetCatalog, MetadataCatalog
from seg_research.data.build import build_detection_test_loader, build_detection_train_loader
from seg_research.data.detection_utils import read_image
from seg_research.data.transforms import ResizeTransform
from seg_research.engine import DefaultPredictor
from seg_research.evaluation import SemSegEvaluator, build_evaluator, inference_on_dataset
from seg_research.modeling import build_model
from seg_research.structures import Boxes, Instances, bitmask_to_rle, rle_to_bitmask
from seg_research.utils.visualizer import VisImageWriter, Visualizer, read_panoptic_ids

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "tests", "helpers", "configs", "tiny_semseg_instant_test.yaml")
# Tools run through tests/helpers/run_tool.py, which registers the test model of CONFIG first.
RUN_TOOL = os.path.join(REPO, "tests", "helpers", "run_tool.py")
sys.path.insert(0, os.path.join(REPO, "tests", "helpers"))
import tiny_semseg  # noqa: E402, F401  (registers TinySemSegNet, the model of the tiny configs)

SEM = "shapes_val_sem_seg"
GAP = 4


def _tool(name):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tool, *args):
    proc = subprocess.run([sys.executable, RUN_TOOL, os.path.join(REPO, "tools", f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    return proc


def _png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _split_panels(drawing, n, image_height):
    """The n side-by-side panels of a visualize.py drawing, each as (title strip, image part)."""
    width = (drawing.shape[1] - GAP * (n - 1)) // n
    assert drawing.shape[1] == n * width + (n - 1) * GAP
    for k in range(1, n):
        assert (drawing[:, k * (width + GAP) - GAP:k * (width + GAP)] == 255).all()
    strip = drawing.shape[0] - image_height
    assert strip >= 14  # every panel has a caption strip above the image (font of 6 px or more)
    panels = [drawing[:, k * (width + GAP):k * (width + GAP) + width] for k in range(n)]
    return [(p[:strip], p[strip:]) for p in panels]


def _panels(drawing, n, image_height):
    """The image parts of the n panels."""
    return [image for _, image in _split_panels(drawing, n, image_height)]


def _is_caption(strip):
    """A white strip with dark text on it."""
    dark = (strip.max(axis=2) < 128).mean()
    return (strip == 255).all(axis=2).mean() > 0.5 and 0.005 < dark < 0.5


def _cfg(**overrides):
    cfg = get_cfg()
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """OUTPUT_DIR with a random-init model_final.pth and the evaluation of it on shapes_val_sem_seg."""
    out = tmp_path_factory.mktemp("run")
    cfg = _cfg(OUTPUT_DIR=str(out))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    Checkpointer(model, str(out)).save("model_final")
    cfg.MODEL.WEIGHTS = str(out / "model_final.pth")
    inference_on_dataset(model, build_detection_test_loader(cfg, SEM), build_evaluator(cfg, SEM))
    with torch.no_grad():
        preds = [model(batch)[0]["sem_seg"].argmax(dim=0) for batch in build_detection_test_loader(cfg, SEM)]
    return SimpleNamespace(out=out, cfg=cfg, model=model, preds=preds, inference=out / "inference" / SEM)


def test_sem_seg_evaluator_saves_each_image_prediction_as_rle_per_class(run):
    entries = json.load(open(run.inference / "sem_seg_predictions.json"))
    records = DatasetCatalog.get(SEM)
    for record, pred in zip(records, run.preds, strict=True):
        mine = [e for e in entries if e["image_id"] == record["image_id"]]
        assert {e["file_name"] for e in mine} == {record["file_name"]}
        assert sorted(e["category_id"] for e in mine) == sorted(torch.unique(pred).tolist())
        labels = np.full(pred.shape, -1)
        for e in mine:
            mask = rle_to_bitmask(e["segmentation"])
            assert (labels[mask] == -1).all()  # classes do not overlap
            labels[mask] = e["category_id"]
        np.testing.assert_array_equal(labels, pred.numpy())


def test_saved_sem_seg_category_ids_are_the_dataset_ids(tmp_path):
    name = "test_tools_semseg_ids"
    MetadataCatalog.get(name).set(stuff_classes=["a", "b"], stuff_dataset_id_to_contiguous_id={10: 0, 20: 1})
    gt = tmp_path / "gt.png"
    Image.fromarray(np.array([[0, 1, 1]], dtype=np.uint8)).save(gt)
    logits = torch.tensor([[[1.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]]])  # prediction [[0, 1, 0]]
    inputs = [{"sem_seg_file_name": str(gt), "file_name": "img.png", "image_id": 3}]
    for save, folder in ((True, tmp_path / "on"), (False, tmp_path / "off")):
        ev = SemSegEvaluator(name, distributed=False, output_dir=str(folder), save_predictions=save)
        ev.process(inputs, [{"sem_seg": logits}])
        ev.evaluate()
    MetadataCatalog.remove(name)
    assert not (tmp_path / "off" / "sem_seg_predictions.json").exists()
    saved = json.load(open(tmp_path / "on" / "sem_seg_predictions.json"))
    assert [(e["image_id"], e["file_name"], e["category_id"]) for e in saved] == [(3, "img.png", 10),
                                                                                 (3, "img.png", 20)]
    assert rle_to_bitmask(saved[0]["segmentation"]).tolist() == [[True, False, True]]
    assert rle_to_bitmask(saved[1]["segmentation"]).tolist() == [[False, True, False]]


def test_default_predictor_resizes_converts_format_and_answers_at_original_size(run):
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)  # BGR
    # ResizeShortestEdge(64, max 64): (32, 48) -> short side 64 gives (64, 96), capped to (43, 64)
    resized = ResizeTransform(32, 48, 43, 64).apply_image(image)
    for fmt, expected_input in (("BGR", resized), ("RGB", resized[:, :, ::-1])):
        cfg = run.cfg.clone()
        cfg.INPUT.FORMAT = fmt
        predictor = DefaultPredictor(cfg)
        assert not predictor.model.training
        out = predictor(image)["sem_seg"]
        assert out.shape == (7, 32, 48)
        tensor = torch.as_tensor(np.ascontiguousarray(expected_input.transpose(2, 0, 1)))
        with torch.no_grad():
            ref = run.model([{"image": tensor, "height": 32, "width": 48}])[0]["sem_seg"]
        torch.testing.assert_close(out, ref)
    assert len(predictor.metadata.stuff_classes) == 7
    with pytest.raises(ValueError, match="read_image"):
        predictor(image[:, :, 0])


@pytest.mark.slow
def test_demo_writes_overlays_of_gray_and_rgba_images_and_skips_a_corrupt_one(run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (50, 70), dtype=np.uint8), mode="L").save(inputs / "gray.png")
    Image.fromarray(rng.integers(0, 256, (40, 30, 4), dtype=np.uint8), mode="RGBA").save(inputs / "rgba.png")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (inputs / "notes.txt").write_text("not an image, not an input")
    out = tmp_path / "out"
    proc = _run("demo", "--config-file", CONFIG, "--input", inputs, "--output", out,
                "MODEL.WEIGHTS", run.cfg.MODEL.WEIGHTS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "Skipped" in log and str(inputs / "broken.png") in log
    assert sorted(os.listdir(out)) == ["gray.png", "rgba.png"]
    predictor = DefaultPredictor(run.cfg)
    for name, shape in (("gray.png", (50, 70, 3)), ("rgba.png", (40, 30, 3))):
        drawing = _png(out / name)
        assert drawing.shape == shape
        bgr = read_image(str(inputs / name), format="BGR")
        pred = predictor(bgr)["sem_seg"].argmax(dim=0)
        expected = Visualizer(bgr[:, :, ::-1], predictor.metadata).draw_sem_seg(pred).get_image()
        np.testing.assert_array_equal(drawing, expected)
        assert np.abs(drawing.astype(int) - bgr[:, :, ::-1]).mean() > 10  # every pixel has a class fill


@pytest.mark.slow
def test_visualize_sem_seg_predictions_beside_ground_truth(run, tmp_path):
    proc = _run("visualize", "--predictions", run.inference, "--output-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = DatasetCatalog.get(SEM)
    meta = MetadataCatalog.get(SEM)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(r["file_name"]) for r in records)
    for record, pred in zip(records, run.preds, strict=True):
        gt_panel, pred_panel = _panels(_png(tmp_path / os.path.basename(record["file_name"])), 2, record["height"])
        image = read_image(record["file_name"], format="RGB")
        np.testing.assert_array_equal(gt_panel, Visualizer(image, meta).draw_dataset_dict(record).get_image())
        np.testing.assert_array_equal(pred_panel, Visualizer(image, meta).draw_sem_seg(pred).get_image())


def test_visualize_panoptic_and_instance_predictions_from_hand_made_files(tmp_path):
    name = "shapes_val_panoptic"
    records, meta = DatasetCatalog.get(name), MetadataCatalog.get(name)
    gt_json = json.load(open(meta.panoptic_json))
    pred_dir = tmp_path / name
    (pred_dir / "panoptic_predictions").mkdir(parents=True)
    anns = {a["image_id"]: a for a in gt_json["annotations"]}
    predicted = []
    for record in records[:2]:  # the third image has no panoptic prediction
        ann = dict(anns[record["image_id"]])
        ann["segments_info"] = ann["segments_info"][:-1]  # the model "missed" the last segment
        predicted.append(ann)
        shutil.copy(record["pan_seg_file_name"], pred_dir / "panoptic_predictions" / ann["file_name"])
    json.dump({"annotations": predicted, "categories": gt_json["categories"]},
              open(pred_dir / "panoptic_predictions.json", "w"))
    square = np.zeros((64, 64), dtype=bool)
    square[5:25, 5:25] = True
    detection = {"image_id": records[0]["image_id"], "category_id": 2, "bbox": [5, 5, 20, 20],
                 "segmentation": bitmask_to_rle(square)}
    json.dump([{**detection, "score": 0.9}, {**detection, "score": 0.3, "bbox": [30, 30, 5, 5]}],
              open(pred_dir / "coco_instances_results.json", "w"))

    out = tmp_path / "vis"
    assert _tool("visualize").main(["--predictions", str(pred_dir), "--output-dir", str(out), "--num", "3"]) == 0
    assert len(os.listdir(out)) == 3
    for k, record in enumerate(records[:3]):
        drawing = _png(out / os.path.basename(record["file_name"]))
        (gt_title, gt), (inst_title, inst), (pan_title, pan) = _split_panels(drawing, 3, record["height"])
        # captions: "ground truth" | "prediction, score >= 0.5" | "prediction (panoptic)", each different
        assert all(_is_caption(t) for t in (gt_title, inst_title, pan_title))
        assert len({t.tobytes() for t in (gt_title, inst_title, pan_title)}) == 3
        image = read_image(record["file_name"], format="RGB")
        np.testing.assert_array_equal(gt, Visualizer(image, meta).draw_dataset_dict(record).get_image())
        expected_pan = image
        if k < 2:
            expected_pan = Visualizer(image, meta).draw_panoptic_seg(
                read_panoptic_ids(record["pan_seg_file_name"]), record["segments_info"][:-1]).get_image()
        np.testing.assert_array_equal(pan, expected_pan)
        expected_inst = image
        if k == 0:  # one detection above the 0.5 threshold: dataset id 2 is contiguous class 1 ("square")
            kept = Instances((64, 64), pred_boxes=Boxes(torch.tensor([[5.0, 5.0, 25.0, 25.0]])),
                             scores=torch.tensor([0.9]), pred_classes=torch.tensor([1]),
                             pred_masks=torch.from_numpy(square[None]))
            expected_inst = Visualizer(image, meta).draw_instance_predictions(kept).get_image()
        np.testing.assert_array_equal(inst, expected_inst)

    # the instance caption names the threshold: another --conf-threshold, another caption; the others stay
    out3 = tmp_path / "vis_0.3"
    assert _tool("visualize").main(["--predictions", str(pred_dir / "coco_instances_results.json"), "--dataset", name,
                                    "--output-dir", str(out3), "--num", "1", "--conf-threshold", "0.3"]) == 0
    low_gt, low_inst = _split_panels(_png(out3 / os.path.basename(records[0]["file_name"])), 2, records[0]["height"])
    first = _split_panels(_png(out / os.path.basename(records[0]["file_name"])), 3, records[0]["height"])
    np.testing.assert_array_equal(low_gt[0], first[0][0])
    assert _is_caption(low_inst[0]) and not np.array_equal(low_inst[0], first[1][0])


def test_visualize_annotation_and_dataloader_sources(tmp_path):
    visualize = _tool("visualize")
    ann_out = tmp_path / "annotation"
    assert visualize.main(["--source", "annotation", "--config-file", CONFIG, "--output-dir", str(ann_out),
                           "--num", "2", "DATASETS.TRAIN", '("shapes_train",)']) == 0
    meta = MetadataCatalog.get("shapes_train")
    for record in DatasetCatalog.get("shapes_train")[:2]:
        image = read_image(record["file_name"], format="RGB")
        np.testing.assert_array_equal(_png(ann_out / os.path.basename(record["file_name"])),
                                      Visualizer(image, meta).draw_dataset_dict(record).get_image())

    overrides = ["DATASETS.TRAIN", '("shapes_train",)', "MODEL.MASK_ON", "True"]
    loader_out = tmp_path / "dataloader"
    assert visualize.main(["--source", "dataloader", "--config-file", CONFIG, "--output-dir", str(loader_out),
                           "--num", "3", *overrides]) == 0
    cfg = get_cfg()
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(overrides)
    expected_out, writer = tmp_path / "expected", VisImageWriter(str(tmp_path / "expected"))
    mapped = itertools.islice((m for batch in build_detection_train_loader(cfg) for m in batch), 3)
    for m in mapped:  # the same stream: the loader is seeded by SEED
        vis = Visualizer(m["image"].permute(1, 2, 0).numpy()[:, :, ::-1], meta)  # BGR (INPUT.FORMAT) -> RGB
        assert len(m["instances"]) > 0
        writer.write(vis.draw_gt_instances(m["instances"]), m["file_name"])
    assert sorted(os.listdir(loader_out)) == sorted(os.listdir(expected_out))
    for f in os.listdir(expected_out):
        np.testing.assert_array_equal(_png(loader_out / f), _png(expected_out / f))


METRICS = [
    {"iteration": 1, "total_loss": 2.0, "loss_sem_seg": 2.0, "lr": 0.001, "time": 0.3},
    {"iteration": 3, "total_loss": 1.6, "loss_sem_seg": 1.6, "lr": 0.002, "sem_seg/mIoU": 10.0,
     "sem_seg/IoU-sky": 4.0},
    {"iteration": 3, "total_loss": 1.5, "loss_sem_seg": 1.5, "lr": 0.002},  # the same iteration after --resume
]


@pytest.mark.slow
def test_plot_metrics(tmp_path):
    with open(tmp_path / "metrics.json", "w") as f:
        f.write("".join(json.dumps(m) + "\n" for m in METRICS) + '{"iteration": 5, "total_lo')  # killed mid-line
    plot_metrics = _tool("plot_metrics")
    series = plot_metrics.read_metrics(str(tmp_path / "metrics.json"))
    assert series["total_loss"] == [(1, 2.0), (3, 1.5)] and series["lr"] == [(1, 0.001), (3, 0.002)]
    groups = plot_metrics.group_series(series)
    assert {k: sorted(v) for k, v in groups.items()} == {
        "losses": ["loss_sem_seg", "total_loss"], "learning rate": ["lr"], "evaluation": ["sem_seg/mIoU"]}
    assert plot_metrics.main([str(tmp_path / "missing")]) == 1

    proc = _run("plot_metrics", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unreadable line" in proc.stdout + proc.stderr
    png = Image.open(tmp_path / "metrics.png")
    assert png.size == (800, 900)  # 3 stacked panels of 8 x 3 inches at 100 dpi


def test_visualize_predictions_accepts_output_dir_inference(tmp_path):
    """--predictions OUTPUT_DIR/inference uses its one dataset folder (or --dataset's among several)."""
    name = "shapes_val_panoptic"
    records = DatasetCatalog.get(name)
    inference = tmp_path / "inference"
    (inference / name).mkdir(parents=True)
    json.dump([], open(inference / name / "coco_instances_results.json", "w"))  # a model that detected nothing
    visualize = _tool("visualize")
    out = tmp_path / "vis"
    assert visualize.main(["--predictions", str(inference), "--output-dir", str(out), "--num", "2"]) == 0
    assert sorted(os.listdir(out)) == sorted(os.path.basename(r["file_name"]) for r in records[:2])
    gt, pred = _panels(_png(out / os.path.basename(records[0]["file_name"])), 2, records[0]["height"])
    np.testing.assert_array_equal(pred, read_image(records[0]["file_name"], format="RGB"))  # nothing drawn

    (inference / "shapes_val").mkdir()
    json.dump([], open(inference / "shapes_val" / "coco_instances_results.json", "w"))
    with pytest.raises(FileNotFoundError, match=r"several datasets \['shapes_val', 'shapes_val_panoptic'\].*--dataset"):
        visualize.main(["--predictions", str(inference), "--output-dir", str(out)])
    assert visualize.main(["--predictions", str(inference), "--dataset", "shapes_val", "--output-dir",
                           str(tmp_path / "vis2"), "--num", "1"]) == 0
    with pytest.raises(FileNotFoundError, match="or in a dataset folder below"):
        visualize.main(["--predictions", str(tmp_path / "vis2"), "--output-dir", str(out)])
