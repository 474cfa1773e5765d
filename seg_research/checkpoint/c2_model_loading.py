"""detectron2's Caffe2-Detectron weight renaming: not provided (see CAFFE2's advice)."""
from ..utils.absent import CAFFE2, absent_names

__getattr__ = absent_names(__name__, {
    "align_and_update_state_dicts": 'not provided; DetectionCheckpointer.load matches detectron2/torchvision checkpoint keys to the model (checkpoint.detectron2_layout) and reports missing/unexpected ones.',
    "convert_basic_c2_names": CAFFE2,
    "convert_c2_detectron_names": CAFFE2,
})
