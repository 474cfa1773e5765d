# The embedded Shapes dataset, instance segmentation (shapes_train / shapes_val, COCO json),
# with the loaders, mapper and evaluator that configs/Shapes/mask_rcnn_R_18_FPN_demo.yaml gets
# from its DATASETS / INPUT / DATALOADER keys. Evaluation files go to ${train.output_dir}/inference.
from seg_research.config import LazyCall as L
from seg_research.data.build import (
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from seg_research.data.mapper import DatasetMapper
from seg_research.data.transforms import RandomFlip, ResizeShortestEdge
from seg_research.evaluation import COCOEvaluator

dataloader = dict(
    train=L(build_detection_train_loader)(
        dataset=L(get_detection_dataset_dicts)(names=["shapes_train"], filter_empty=True),
        mapper=L(DatasetMapper)(
            is_train=True,
            augmentations=[
                L(ResizeShortestEdge)(short_edge_length=(192,), max_size=192, sample_style="choice"),
                L(RandomFlip)(horizontal=True),
            ],
            image_format="BGR",
            use_instance_mask=True,
        ),
        total_batch_size=4,
        aspect_ratio_grouping=True,
        num_workers=0,
    ),
    test=L(build_detection_test_loader)(
        dataset=L(get_detection_dataset_dicts)(names=["shapes_val"], filter_empty=False),
        mapper=L(DatasetMapper)(
            is_train=False,
            augmentations=[L(ResizeShortestEdge)(short_edge_length=192, max_size=192, sample_style="choice")],
            image_format="${...train.mapper.image_format}",
        ),
        num_workers=0,
    ),
    evaluator=L(COCOEvaluator)(
        dataset_name="${..test.dataset.names[0]}",
        tasks=("bbox", "segm"),
        output_dir="${train.output_dir}/inference/${.dataset_name}",
        max_dets_per_image=100,
    ),
)
