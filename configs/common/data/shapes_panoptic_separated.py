# The embedded Shapes dataset for Panoptic FPN: instances + stuff labels (0 = things, 1..3 =
# sky/ground/water) of shapes_{train,val}_panoptic_separated, scored with PQ against the panoptic
# ground truth, as configs/Shapes/panoptic_fpn_R_18_demo.yaml reads it.
from seg_research.config import LazyCall as L
from seg_research.evaluation import COCOPanopticEvaluator

from .shapes import dataloader

dataloader.train.dataset.names = ["shapes_train_panoptic_separated"]
dataloader.train.dataset.filter_empty = False  # images with stuff but no thing train the semantic branch
dataloader.test.dataset.names = ["shapes_val_panoptic_separated"]
dataloader.evaluator = L(COCOPanopticEvaluator)(
    dataset_name="${..test.dataset.names[0]}",
    output_dir="${train.output_dir}/inference/${.dataset_name}",
    num_workers=0,
)
