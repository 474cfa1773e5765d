"""detectron2's data-loader benchmark: not provided here; ``tools/benchmark.py --task data`` times the loader."""
from ..utils.absent import absent_names

__getattr__ = absent_names(__name__, {
    "DataLoaderBenchmark": 'not provided; run tools/benchmark.py --task data --config-file F (images/s of the train loader).',
    "iter_benchmark": 'not provided; run tools/benchmark.py --task data --config-file F (images/s of the train loader).',
})
