"""Scripts written against detectron2's API (tests/fixtures/d2_scripts/) run on seg_research after
replacing the import, on the Shapes instant configs: train_net with a DefaultTrainer subclass, a plain
training loop, dataset and JSON-result visualisation, and the DefaultPredictor demo."""
import json
import os
import runpy
import sys
from pathlib import Path
from unittest import mock

import cv2
import pytest

# Subprocess / end-to-end runs: not in `make test-fast`.
pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "fixtures" / "d2_scripts"
CONFIG = str(Path(__file__).parent.parent / "configs" / "Shapes" / "mask_rcnn_R_18_FPN_instant_test.yaml")


def run_script(tmp_path: Path, name: str, *argv: str) -> None:
    """Copy ``name`` with ``detectron2`` replaced by ``seg_research`` and run it as ``__main__``."""
    source = (SCRIPTS / name).read_text()
    assert "from detectron2" in source or "import detectron2" in source
    path = tmp_path / name
    path.write_text(source.replace("detectron2", "seg_research"))
    with mock.patch.object(sys, "argv", [str(path), *argv]):
        runpy.run_path(str(path), run_name="__main__")


def _metrics(output_dir: Path):
    return [json.loads(line) for line in (output_dir / "metrics.json").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """train_net.py: 6 iterations, evaluation at 3 and 6, then TTA (two sizes, flipped) after training."""
    tmp = tmp_path_factory.mktemp("train_net")
    out = tmp / "out"
    run_script(tmp, "train_net.py", "--config-file", CONFIG, "OUTPUT_DIR", str(out),
               "TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "(56, 64)", "TEST.AUG.MAX_SIZE", "128")
    return tmp, out


def test_train_net_with_trainer_subclass(trained):
    tmp, out = trained
    assert (out / "model_final.pth").exists() and (out / "last_checkpoint").read_text() == "model_final.pth"
    evaluated = [m for m in _metrics(out) if "segm/AP" in m]
    assert [m["iteration"] for m in evaluated] == [2, 5]
    plain = json.loads((out / "inference" / "shapes_val" / "results.json").read_text())
    tta = json.loads((out / "inference_TTA" / "shapes_val" / "results.json").read_text())
    assert set(plain) == set(tta) == {"bbox", "segm"} and 0.0 <= tta["segm"]["AP"] <= 100.0
    # --eval-only: DetectionCheckpointer loads MODEL.WEIGHTS; plain + TTA results again, checked by verify_results
    run_script(tmp, "train_net.py", "--config-file", CONFIG, "--eval-only", "OUTPUT_DIR", str(tmp / "eval"),
               "MODEL.WEIGHTS", str(out / "model_final.pth"), "TEST.EXPECTED_RESULTS",
               f"[['segm', 'AP', {plain['segm']['AP']}, 0.01]]")
    assert json.loads((tmp / "eval" / "inference" / "shapes_val" / "results.json").read_text()) == plain


def test_plain_train_loop_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "out"
    common = ["OUTPUT_DIR", str(out), "SOLVER.CHECKPOINT_PERIOD", "2"]
    run_script(tmp_path, "plain_train_net.py", "--config-file", CONFIG, *common, "SOLVER.MAX_ITER", "3")
    assert sorted(p.name for p in out.glob("model_*.pth")) == ["model_0000001.pth", "model_final.pth"]
    predictions = json.loads((out / "inference" / "shapes_val" / "coco_instances_results.json").read_text())
    assert predictions and {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(predictions[0])
    run_script(tmp_path, "plain_train_net.py", "--config-file", CONFIG, "--resume", *common, "SOLVER.MAX_ITER", "5")
    iterations = [m["iteration"] for m in _metrics(out) if "total_loss" in m]
    assert iterations[-1] == 4 and 3 in iterations  # resumed after iteration 2 (model_final of the first run)
    assert (out / "model_0000003.pth").exists()


def test_visualize_data_from_loader_and_annotations(tmp_path):
    run_script(tmp_path, "visualize_data.py", "--source", "dataloader", "--config-file", CONFIG,
               "--output-dir", str(tmp_path / "loader"), "--max-images", "2")
    run_script(tmp_path, "visualize_data.py", "--source", "annotation", "--config-file", CONFIG,
               "--output-dir", str(tmp_path / "annotation"), "--max-images", "3")
    assert len(list((tmp_path / "loader").glob("*.jpg"))) == 2  # one batch of IMS_PER_BATCH 2
    drawn = sorted((tmp_path / "annotation").iterdir())
    assert len(drawn) == 3 and cv2.imread(str(drawn[0])).shape[:2] == (int(os.environ["SEG_SHAPES_SIZE"]),) * 2


def test_visualize_json_results_of_coco_evaluator(trained, tmp_path):
    _, out = trained
    results = out / "inference" / "shapes_val" / "coco_instances_results.json"
    run_script(tmp_path, "visualize_json_results.py", "--input", str(results), "--output", str(tmp_path / "vis"),
               "--dataset", "shapes_val", "--conf-threshold", "0.0")
    drawn = sorted((tmp_path / "vis").iterdir())
    size = int(os.environ["SEG_SHAPES_SIZE"])
    assert len(drawn) == int(os.environ["SEG_SHAPES_VAL"])
    assert cv2.imread(str(drawn[0])).shape == (size, 2 * size, 3)  # prediction | ground truth


def test_default_predictor_demo(trained, tmp_path):
    from seg_research.data import DatasetCatalog

    _, out = trained
    images = [d["file_name"] for d in DatasetCatalog.get("shapes_val")[:2]]
    run_script(tmp_path, "demo.py", "--config-file", CONFIG, "--input", *images, "--output", str(tmp_path / "demo"),
               "--confidence-threshold", "0.0", "--opts", "MODEL.WEIGHTS", str(out / "model_final.pth"))
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(os.path.basename(p) for p in images)


def test_visualize_json_results_with_images_without_predictions(trained, tmp_path):
    """Above every score: no image keeps a prediction, so each left half is the image itself."""
    _, out = trained
    results = out / "inference" / "shapes_val" / "coco_instances_results.json"
    run_script(tmp_path, "visualize_json_results.py", "--input", str(results), "--output", str(tmp_path / "vis"),
               "--dataset", "shapes_val", "--conf-threshold", "1.1")
    from seg_research.data import DatasetCatalog

    for dic in DatasetCatalog.get("shapes_val"):
        drawn = cv2.imread(str(tmp_path / "vis" / os.path.basename(dic["file_name"])))
        image = cv2.imread(dic["file_name"])
        assert (drawn[:, : image.shape[1]] == image).all()


def test_detectron2_module_paths_the_official_tools_import():
    """Imports of detectron2's tools/visualize_data.py and demo/predictor.py that are not package-level."""
    from seg_research.data.build import filter_images_with_few_keypoints
    from seg_research.engine import DefaultPredictor as from_package
    from seg_research.engine.defaults import DefaultPredictor
    from seg_research.utils.video_visualizer import VideoVisualizer  # noqa: F401

    assert DefaultPredictor is from_package and filter_images_with_few_keypoints([], 1) == []
