"""What ``tools/benchmark.py`` runs: the timed tasks (:mod:`.tasks`; the generated problems of
``--task coco-eval`` in :mod:`.coco_eval` and :mod:`.eval_memory`, of ``--task pq`` in :mod:`.pq_eval`),
their inputs (:mod:`.inputs`), timing and records (:mod:`.records`) and torchvision's Mask R-CNN built
from a config (:mod:`.torchvision_twin`), the reference of ``--compare torchvision``."""
from .coco_eval import bench_coco_eval
from .inputs import Sample, ours_input, samples_from_loader, synthetic_image_size, synthetic_samples, torchvision_input
from .pq_eval import bench_pq
from .records import Timer, base_record, current_rss_mb, emit
from .tasks import BENCHMARKS, GENERATED_TASKS, bench_data, bench_eval, bench_inference, bench_train
from .torchvision_twin import load_torchvision_weights, torchvision_maskrcnn_from_cfg

__all__ = [
    "BENCHMARKS", "GENERATED_TASKS", "Sample", "Timer", "base_record", "bench_coco_eval", "bench_data", "bench_eval",
    "bench_inference", "bench_pq", "bench_train", "current_rss_mb", "emit", "load_torchvision_weights", "ours_input",
    "samples_from_loader", "synthetic_image_size", "synthetic_samples", "torchvision_input",
    "torchvision_maskrcnn_from_cfg",
]
