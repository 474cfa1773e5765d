"""What ``tools/benchmark.py`` runs: the timed tasks (:mod:`.tasks`), their inputs (:mod:`.inputs`),
timing and records (:mod:`.records`) and torchvision's Mask R-CNN built from a config
(:mod:`.torchvision_twin`), the reference of ``--compare torchvision``."""
from .inputs import Sample, ours_input, samples_from_loader, synthetic_image_size, synthetic_samples, torchvision_input
from .records import Timer, base_record, emit
from .tasks import BENCHMARKS, bench_data, bench_eval, bench_inference, bench_train
from .torchvision_twin import load_torchvision_weights, torchvision_maskrcnn_from_cfg

__all__ = [
    "BENCHMARKS", "Sample", "Timer", "base_record", "bench_data", "bench_eval", "bench_inference", "bench_train",
    "emit", "load_torchvision_weights", "ours_input", "samples_from_loader", "synthetic_image_size",
    "synthetic_samples", "torchvision_input", "torchvision_maskrcnn_from_cfg",
]
