"""Benchmarks of seg_research: code that times the library, kept outside it (``seg_research/`` holds only
what users' code paths touch).

What ``tools/benchmark.py`` runs: the timed tasks (:mod:`.tasks`; the generated problems of ``--task
coco-eval`` in :mod:`.coco_eval` and :mod:`.eval_memory`, of ``--task pq`` in :mod:`.pq_eval`), their
inputs (:mod:`.inputs`), timing and records (:mod:`.records`) and torchvision's Mask R-CNN built from a
config (:mod:`.torchvision_twin`), the reference of ``--compare torchvision``. The generated problems
themselves (:mod:`.coco_synthetic`, :mod:`.panoptic_synthetic`) also serve the evaluation tests. Scripts:
``pq_eval.py`` (ours against a naive PQ, :mod:`.pq_naive`) and ``semseg_shapes.py``; see README.md.

Import the submodules (``from benchmarks.tasks import BENCHMARKS``): this package imports nothing itself,
so that a test reading a generated problem does not load the models.
"""
