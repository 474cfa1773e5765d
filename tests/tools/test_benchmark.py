"""tools/benchmark.py emits one valid JSON line per implementation (tiny config, one timed step)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import seg_research.data.datasets.builtin  # noqa: F401

# Subprocess / end-to-end runs: not in `make test-fast`.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "benchmark.py")
CONFIG = os.path.join(REPO, "configs", "Shapes", "mask_rcnn_R_18_FPN_instant_test.yaml")
REQUIRED = {"impl", "task", "config", "median_s", "min_s", "max_s", "n", "torch", "torchvision", "threads", "device",
            "peak_rss_mb"}


def _main(argv):
    spec = importlib.util.spec_from_file_location("_tool_benchmark", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def test_train_compare_torchvision_prints_and_appends_two_json_lines(tmp_path):
    out = tmp_path / "bench.jsonl"
    proc = subprocess.run([sys.executable, TOOL, "--config-file", CONFIG, "--task", "train", "--iters", "1",
                           "--warmup", "0", "--compare", "torchvision", "--json", str(out), "--threads", "1"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [json.loads(line) for line in out.read_text().splitlines()] == printed
    assert [r["impl"] for r in printed] == ["seg_research", "torchvision"]
    for record in printed:
        assert REQUIRED <= set(record)
        assert record["task"] == "train" and record["n"] == 1 and record["threads"] == 1
        assert record["batch_size"] == 2 and record["image_size"] == [64, 64] and record["instances_per_image"] == 5
        assert 0 < record["min_s"] == record["median_s"] == record["max_s"] and record["peak_rss_mb"] > 0
        assert record["mask_rois"] > 0


@pytest.mark.parametrize("task, extra", [("inference", {"raw_median_s"}), ("data", {"images_per_s"})])
def test_other_tasks_emit_their_record(tmp_path, task, extra):
    (record,) = _main(["--config-file", CONFIG, "--task", task, "--iters", "1", "--warmup", "0", "--threads", "1",
                       "OUTPUT_DIR", str(tmp_path)])
    assert REQUIRED | extra <= set(record)
    assert record["impl"] == "seg_research" and record["task"] == task and record["median_s"] > 0


def test_eval_times_a_coco_evaluator_with_each_backend(tmp_path):
    pytest.importorskip("hotcoco")
    records = _main(["--config-file", CONFIG, "--task", "eval", "--iters", "2", "--warmup", "0", "--threads", "1",
                     "OUTPUT_DIR", str(tmp_path)])
    assert [r["coco_backend"] for r in records] == ["hotcoco", "pycocotools"]
    for record in records:
        assert REQUIRED | {"evaluator", "num_images", "metrics_equal", "max_metric_diff"} <= set(record)
        assert record["impl"] == "seg_research" and record["evaluator"] == "COCOEvaluator"
        assert record["num_images"] == 6 and record["n"] == 2 and record["median_s"] > 0
        assert record["metrics_equal"] is True and record["max_metric_diff"] <= 1e-6


def test_precisions_are_timed_in_one_run_with_one_record_each(tmp_path):
    records = _main(["--config-file", CONFIG, "--task", "inference", "--precision", "fp32", "bf16", "--iters", "1",
                     "--warmup", "0", "--threads", "1", "OUTPUT_DIR", str(tmp_path)])
    assert [(r["impl"], r["precision"]) for r in records] == [("seg_research", "fp32"), ("seg_research", "bf16")]
    assert all(r["median_s"] > 0 and isinstance(r["cpu_native_bf16"], bool) for r in records)


def test_compare_compiled_times_the_eager_and_the_compiled_model_in_one_run(tmp_path):
    records = _main(["--config-file", CONFIG, "--task", "inference", "--compare", "compiled", "--iters", "1",
                     "--warmup", "1", "--threads", "1", "OUTPUT_DIR", str(tmp_path),
                     "MODEL.COMPILE.PARTS", "['roi_heads.box_head']"])  # a small part: compiles in seconds
    assert [r["impl"] for r in records] == ["seg_research", "seg_research+compile"]
    assert all(r["median_s"] > 0 and r["n"] == 1 for r in records)


def test_generated_tasks_take_no_config_and_the_others_need_one():
    with pytest.raises(SystemExit):
        _main(["--config-file", CONFIG, "--task", "pq"])
    with pytest.raises(SystemExit):
        _main(["--task", "eval"])
    with pytest.raises(SystemExit):
        _main(["--config-file", CONFIG, "--task", "eval", "--num-images", "3"])


def test_pq_task_times_each_backend_and_the_decoding_floor():
    pytest.importorskip("hotcoco")
    records = _main(["--task", "pq", "--num-images", "3", "--iters", "1", "--warmup", "0", "--threads", "1"])
    assert [(r["impl"], r.get("pq_backend")) for r in records] == [("pq_compute", "hotcoco"),
                                                                   ("pq_compute", "seg_research"), ("decode_floor", None)]
    for record in records:
        assert REQUIRED <= set(record) and record["config"] is None and record["n"] == 1
        assert record["num_images"] == 3 and record["num_pngs"] == 6 and record["image_size"] == [480, 640]
        assert record["median_s"] > 0 and record["images_per_s"] > 0 and record["generation_s"] > 0
        assert 15 < record["gt_segments_per_image"] <= 20
    fast, ours, floor = records
    for pq in (fast, ours):
        assert 0 < pq["pq"] < pq["sq"] <= 1 and 0 < pq["rq"] <= 1 and pq["categories"] > 0 and pq["num_workers"] == 0
        assert pq["metrics_equal"] is True and pq["max_metric_diff"] <= 1e-6
    assert ours["max_metric_diff"] == 0 and ours["pq_threads"] == 1 and fast["pq_threads"] >= 1
    assert floor["pngs_per_s"] == pytest.approx(2 * floor["images_per_s"], rel=1e-3)


def test_eval_times_a_panoptic_evaluator_with_each_pq_backend(tmp_path):
    pytest.importorskip("hotcoco")
    config = os.path.join(REPO, "configs", "Shapes", "panoptic_fpn_R_18_instant_test.yaml")
    records = _main(["--config-file", config, "--task", "eval", "--iters", "1", "--warmup", "0", "--threads", "1",
                     "OUTPUT_DIR", str(tmp_path)])
    assert [r["pq_backend"] for r in records] == ["hotcoco", "seg_research"]
    for record in records:
        assert record["evaluator"] == "COCOPanopticEvaluator" and record["median_s"] > 0
        assert record["metrics_equal"] is True and record["max_metric_diff"] <= 1e-6


def test_coco_eval_task_scores_a_generated_problem_with_each_backend_and_measures_the_main_process():
    pytest.importorskip("hotcoco")
    records = _main(["--task", "coco-eval", "--num-images", "20", "--iters", "1", "--warmup", "0"])
    timed, memory = records[:2], records[2:]
    assert [r["coco_backend"] for r in timed] == ["hotcoco", "pycocotools"]
    for record in timed:
        assert REQUIRED <= set(record) and record["config"] is None and record["num_images"] == 20
        assert record["median_s"] > 0 and record["peak_rss_mb"] >= record["problem_rss_mb"] > 0
        assert record["metrics_equal"] is True and record["max_metric_diff"] <= 1e-6
        assert record["detections"] > record["annotations"] > 0 and record["generation_s"] > 0
        assert 0 < record["bbox_AP"] < 100 and 0 < record["segm_AP"] < 100
    assert [(r["memory_mode"], r["world_size"]) for r in memory] == [("shards", 2), ("in_memory", 1)]
    for record in memory:
        assert record["peak_rss_mb"] >= record["held_rss_mb"] >= record["start_rss_mb"] > 0
        assert record["coco_backend"] == "hotcoco" and record["evaluate_s"] > 0
        assert (record["bbox_AP"], record["segm_AP"]) == (timed[0]["bbox_AP"], timed[0]["segm_AP"])
