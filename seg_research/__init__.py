"""seg_research: instance, semantic and panoptic segmentation with detectron2's conventions."""
__version__ = "0.1.0"
