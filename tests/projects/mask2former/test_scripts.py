"""Upstream Mask2Former's train_net.py, demo/demo.py and demo/predictor.py run on seg_research after two renames
(``detectron2`` -> ``seg_research``, ``from mask2former`` -> ``from seg_research.projects.mask2former``), on the
Shapes Mask2Former config made tiny: 2 training iterations with PQ, AP and mIoU evaluated, ``--eval-only`` on
the checkpoint (checked by the script's verify_results), and the demo drawing one image's panoptic output.

The scripts are the committed copies in tests/fixtures/m2f_scripts/ (MIT, upstream's licence beside them);
where the upstream snapshot is on disk, the copies must equal its files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.slow  # subprocesses, training end to end

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "m2f_scripts"
SNAPSHOT = Path("/work/.mirror/facebookresearch+Mask2Former/repo")
SCRIPTS = {"train_net.py": "train_net.py", "demo.py": "demo/demo.py", "predictor.py": "demo/predictor.py"}
CONFIG = str(ROOT / "configs" / "Shapes" / "mask2former_R18_bs4_demo.yaml")
# The demo config at the tests' 64 px Shapes, with a model of a few thousand parameters per part.
TINY = ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "INPUT.MIN_SIZE_TEST", "64",
        "INPUT.MAX_SIZE_TEST", "64", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32",
        "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "8",
        "MODEL.MASK_FORMER.DEC_LAYERS", "4", "MODEL.MASK_FORMER.TRAIN_NUM_POINTS", "64",
        "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0", "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", "0.0"]


def upstream_source(name: str) -> str:
    source = (FIXTURES / f"{name}.txt").read_text()
    if SNAPSHOT.is_dir():
        snapshot = subprocess.run(["git", f"--git-dir={SNAPSHOT}", "show", f"HEAD:{SCRIPTS[name]}"],
                                  capture_output=True, text=True, check=True).stdout
        assert source == snapshot, f"tests/fixtures/m2f_scripts/{name}.txt differs from upstream's {SCRIPTS[name]}"
    return source


def renamed(source: str) -> str:
    return source.replace("detectron2", "seg_research").replace("from mask2former",
                                                                "from seg_research.projects.mask2former")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("m2f_scripts")
    for name in SCRIPTS:
        source = upstream_source(name)
        assert "detectron2" in source
        (folder / name).write_text(renamed(source))
    return folder


def run(folder: Path, script: str, *argv: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(folder / script), *argv], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


@pytest.fixture(scope="module")
def trained(scripts):
    out = scripts / "train"
    run(scripts, "train_net.py", "--config-file", CONFIG, "SOLVER.MAX_ITER", "2", "OUTPUT_DIR", str(out), *TINY)
    return out


def test_train_net_trains_and_evaluates_pq_ap_miou(trained):
    assert (trained / "model_final.pth").exists()
    results = json.loads((trained / "inference" / "shapes_val_panoptic_with_sem_seg" / "results.json").read_text())
    # upstream's build_evaluator for a coco_panoptic_seg dataset with the three outputs on
    assert set(results) == {"panoptic_seg", "bbox", "segm", "sem_seg"}
    assert 0.0 <= results["panoptic_seg"]["PQ"] <= 100.0 and 0.0 <= results["sem_seg"]["mIoU"] <= 100.0
    # the evaluators' files: upstream gives them OUTPUT_DIR/inference
    assert (trained / "inference" / "coco_instances_results.json").exists()


def test_train_net_eval_only_gives_the_same_results(scripts, trained):
    results = json.loads((trained / "inference" / "shapes_val_panoptic_with_sem_seg" / "results.json").read_text())
    out = scripts / "eval"
    expected = [["panoptic_seg", "PQ", results["panoptic_seg"]["PQ"], 1e-6],
                ["sem_seg", "mIoU", results["sem_seg"]["mIoU"], 1e-6]]
    # verify_results in the script raises SystemExit (exit code 1) when a figure is off
    run(scripts, "train_net.py", "--config-file", CONFIG, "--eval-only", "MODEL.WEIGHTS",
        str(trained / "model_final.pth"), "OUTPUT_DIR", str(out), "TEST.EXPECTED_RESULTS", json.dumps(expected), *TINY)
    again = json.loads((out / "inference" / "shapes_val_panoptic_with_sem_seg" / "results.json").read_text())
    assert json.dumps(again, sort_keys=True) == json.dumps(results, sort_keys=True)


def test_demo_draws_the_panoptic_output(scripts, trained):
    from seg_research.data import DatasetCatalog

    image = DatasetCatalog.get("shapes_val_panoptic_with_sem_seg")[0]["file_name"]
    out = scripts / "demo"
    out.mkdir()
    run(scripts, "demo.py", "--config-file", CONFIG, "--input", image, "--output", str(out), "--opts",
        "MODEL.WEIGHTS", str(trained / "model_final.pth"), *TINY)
    drawn = cv2.imread(str(out / os.path.basename(image)))
    assert drawn is not None and drawn.shape == cv2.imread(image).shape
