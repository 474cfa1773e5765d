# The embedded Shapes dataset, semantic segmentation over its 7 classes (shapes_{train,val}_sem_seg,
# label PNGs, 255 ignored), as configs/Shapes/semantic_fpn_R_18_demo.yaml reads it.
from seg_research.config import LazyCall as L
from seg_research.evaluation import SemSegEvaluator

from .shapes import dataloader

dataloader.train.dataset.names = ["shapes_train_sem_seg"]
dataloader.train.mapper.use_instance_mask = False
dataloader.train.mapper.ignore_label = 255
dataloader.train.total_batch_size = 8
dataloader.test.dataset.names = ["shapes_val_sem_seg"]
dataloader.test.mapper.ignore_label = 255
dataloader.evaluator = L(SemSegEvaluator)(
    dataset_name="${..test.dataset.names[0]}",
    output_dir="${train.output_dir}/inference/${.dataset_name}",
    save_predictions=True,
)
