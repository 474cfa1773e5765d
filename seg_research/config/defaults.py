"""Default configuration: every key the framework reads, with detectron2's names.

Units: sizes in pixels, SOLVER.STEPS/MAX_ITER/CHECKPOINT_PERIOD/EVAL_PERIOD in iterations.
"""
from .config import CfgNode as CN

__all__ = ["get_cfg"]


def get_cfg() -> CN:
    """A fresh copy of the default config below (``_C``), to merge files and overrides into."""
    return _C.clone()


_C = CN()
_C.VERSION = 2

# ---------------------------------------------------------------------------- #
# Model
# ---------------------------------------------------------------------------- #
_C.MODEL = CN()
_C.MODEL.DEVICE = "cpu"
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
# Path to weights (ours, torchvision or detectron2 .pkl); "" trains from scratch.
_C.MODEL.WEIGHTS = ""
_C.MODEL.MASK_ON = False
# Inference precision (DefaultPredictor, tools/demo.py, evaluation): "fp32", or "bf16"/"fp16"/"auto"
# for a forward pass under torch.autocast (see SOLVER.AMP); outputs are returned in float32.
_C.MODEL.PRECISION = "fp32"
# Values are in the image's channel order given by INPUT.FORMAT, 0-255 scale.
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
_C.MODEL.PIXEL_STD = [57.375, 57.120, 58.395]
# DistributedDataParallel: set True for models whose forward leaves some parameters unused.
_C.MODEL.DDP = CN()
_C.MODEL.DDP.FIND_UNUSED_PARAMETERS = False

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
# Stages 1..FREEZE_AT are frozen (0: nothing frozen; 1: stem; 2: stem + res2 ...).
_C.MODEL.BACKBONE.FREEZE_AT = 2

_C.MODEL.RESNETS = CN()
_C.MODEL.RESNETS.DEPTH = 50
_C.MODEL.RESNETS.OUT_FEATURES = ["res4"]
_C.MODEL.RESNETS.NORM = "FrozenBN"
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
# Dilation of res4 / res5 in place of their stride 2 (DeepLab's output stride): (1, 1) output
# stride 32, RES5_DILATION 2 gives 16, RES4_DILATION 2 with RES5_DILATION 4 gives 8.
_C.MODEL.RESNETS.RES4_DILATION = 1
_C.MODEL.RESNETS.RES5_DILATION = 1
# Dilation of the first block of a dilated stage: "torchvision" (replace_stride_with_dilation: the
# previous stage's) or "detectron2" (the stage's own, as its DC5 models); same parameters either way.
_C.MODEL.RESNETS.DILATION_CONVENTION = "torchvision"
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
_C.MODEL.RESNETS.NUM_GROUPS = 1

_C.MODEL.FPN = CN()
_C.MODEL.FPN.IN_FEATURES = []
_C.MODEL.FPN.OUT_CHANNELS = 256
_C.MODEL.FPN.NORM = ""
_C.MODEL.FPN.FUSE_TYPE = "sum"

_C.MODEL.PROPOSAL_GENERATOR = CN()
_C.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
_C.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 0

_C.MODEL.ANCHOR_GENERATOR = CN()
_C.MODEL.ANCHOR_GENERATOR.NAME = "DefaultAnchorGenerator"
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
_C.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0
# Round the cell anchors to whole pixels: True for weights trained with torchvision (its anchors are
# rounded), False (detectron2's exact anchors) for detectron2's and our own.
_C.MODEL.ANCHOR_GENERATOR.ROUND_CELLS = False

_C.MODEL.RPN = CN()
_C.MODEL.RPN.HEAD_NAME = "StandardRPNHead"
_C.MODEL.RPN.IN_FEATURES = ["res4"]
_C.MODEL.RPN.BOUNDARY_THRESH = -1
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
_C.MODEL.RPN.IOU_LABELS = [0, -1, 1]
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
_C.MODEL.RPN.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RPN.BBOX_REG_LOSS_WEIGHT = 1.0
_C.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RPN.SMOOTH_L1_BETA = 0.0
_C.MODEL.RPN.LOSS_WEIGHT = 1.0
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
_C.MODEL.RPN.CONV_DIMS = [-1]

_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
_C.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
_C.MODEL.ROI_HEADS.IOU_LABELS = [0, 1]
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
_C.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.NAME = ""
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT = 1.0
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 0
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.NUM_CONV = 0
_C.MODEL.ROI_BOX_HEAD.CONV_DIM = 256
_C.MODEL.ROI_BOX_HEAD.NORM = ""
_C.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = False

_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
_C.MODEL.ROI_MASK_HEAD.NORM = ""
_C.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = False

_C.MODEL.SEM_SEG_HEAD = CN()
_C.MODEL.SEM_SEG_HEAD.NAME = "SemSegFPNHead"
_C.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
_C.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255
_C.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 54
_C.MODEL.SEM_SEG_HEAD.CONVS_DIM = 128
_C.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 4
_C.MODEL.SEM_SEG_HEAD.NORM = "GN"
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT = 1.0
# Loss terms, names from seg_research.modeling.losses.LOSS_REGISTRY ("cross_entropy", "dice",
# "bce_dice" (2 classes), "focal", "lovasz_softmax"), each multiplied by its entry of LOSS_WEIGHTS
# (and by LOSS_WEIGHT); logged separately as loss_sem_seg (cross_entropy) and loss_sem_seg_<name>.
_C.MODEL.SEM_SEG_HEAD.LOSS_TYPES = ("cross_entropy",)
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHTS = (1.0,)
# gamma of the "focal" loss (0 gives the cross-entropy).
_C.MODEL.SEM_SEG_HEAD.FOCAL_GAMMA = 2.0
# SemanticSegmentor: an auxiliary FCN head (a SemSegFPNHead on these backbone features, the same
# classes and losses), trained only and weighted by AUX_LOSS_WEIGHT; it gives the middle of a network
# trained from scratch a short gradient path (PSPNet's and mmsegmentation's "auxiliary_head", on res4
# with weight 0.4). [] for none.
_C.MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES = []
_C.MODEL.SEM_SEG_HEAD.AUX_LOSS_WEIGHT = 0.4

_C.MODEL.PANOPTIC_FPN = CN()
_C.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT = 1.0
_C.MODEL.PANOPTIC_FPN.COMBINE = CN()
_C.MODEL.PANOPTIC_FPN.COMBINE.ENABLED = True
_C.MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH = 0.5
_C.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 4096
_C.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.5

# ---------------------------------------------------------------------------- #
# Input and augmentation
# ---------------------------------------------------------------------------- #
_C.INPUT = CN()
# Shortest edge at train time: one value picked from the tuple ("choice") or a
# random integer in [min, max] ("range").
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
_C.INPUT.MAX_SIZE_TRAIN = 1333
# 0 disables resizing at test time.
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
_C.INPUT.RANDOM_FLIP = "horizontal"  # "horizontal", "vertical" or "none"
_C.INPUT.FORMAT = "BGR"  # "BGR", "RGB" or "L"
_C.INPUT.MASK_FORMAT = "polygon"  # "polygon" or "bitmask"
_C.INPUT.CROP = CN({"ENABLED": False})
# "relative", "relative_range", "absolute" or "absolute_range" (detectron2 semantics).
_C.INPUT.CROP.TYPE = "relative_range"
_C.INPUT.CROP.SIZE = [0.9, 0.9]
# Multiplicative jitter intensity ranges; (1.0, 1.0) disables.
_C.INPUT.BRIGHTNESS = (1.0, 1.0)
_C.INPUT.CONTRAST = (1.0, 1.0)

# ---------------------------------------------------------------------------- #
# Datasets and loader
# ---------------------------------------------------------------------------- #
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.TEST = ()

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
# "TrainingSampler" or "RepeatFactorTrainingSampler".
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True
# What a training draw does when its sample cannot be read or is malformed (DataError):
# "error" stops training; "skip" logs the file once, draws a seeded replacement and counts
# it as data/skipped_samples in metrics.json.
_C.DATALOADER.ON_BAD_SAMPLE = "error"

# ---------------------------------------------------------------------------- #
# Solver
# ---------------------------------------------------------------------------- #
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "SGD"  # "SGD" or "AdamW"
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"  # or "WarmupCosineLR", "WarmupConstantLR"
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.BASE_LR_END = 0.0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.BETAS = (0.9, 0.999)
_C.SOLVER.WEIGHT_DECAY = 0.0001
# None: same as WEIGHT_DECAY.
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"  # "linear" or "constant"
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Total images per iteration over all processes.
_C.SOLVER.IMS_PER_BATCH = 16
_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"  # "value" or "norm"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# Automatic mixed precision: the forward pass under torch.autocast (parameters, optimizer state,
# BN statistics, losses and checkpoints stay float32). PRECISION "auto" is fp16 with a GradScaler
# on CUDA (detectron2's behaviour) and bf16 on a CPU; "bf16", "fp16" or "fp32". A CPU without
# native bf16 kernels (AVX-512 BF16/AMX/AVX-512) says so and trains in fp32.
_C.SOLVER.AMP = CN({"ENABLED": False})
_C.SOLVER.AMP.PRECISION = "auto"
# On a NaN/infinite loss: False raises FloatingPointError with the iteration and the loss dict;
# True skips that optimizer step (gradients zeroed), counted as nonfinite_steps_skipped in metrics.
_C.SOLVER.SKIP_NONFINITE_STEPS = False

# ---------------------------------------------------------------------------- #
# Test
# ---------------------------------------------------------------------------- #
_C.TEST = CN()
# Evaluate every EVAL_PERIOD iterations (0: only at the end).
_C.TEST.EVAL_PERIOD = 0
_C.TEST.DETECTIONS_PER_IMAGE = 100
# Evaluators that can also write per-image predictions into OUTPUT_DIR/inference/<dataset>/
# do so (SemSegEvaluator: sem_seg_predictions.json), for tools/visualize.py --predictions.
_C.TEST.SAVE_PREDICTIONS = True
# COCOPanopticEvaluator scores PQ with hotcoco's Rust evaluator (same counts, threads in the
# evaluating process) when hotcoco imports; False forces ours (evaluation.panoptic_quality, the reference).
_C.TEST.PANOPTIC_USE_FAST_IMPL = True
# Processes computing PQ with ours in COCOPanopticEvaluator, per rank: 0 computes in the evaluating
# process; N > 0 uses a pool of N processes over chunks of images (one image in memory per process).
_C.TEST.PANOPTIC_NUM_WORKERS = 0
# [[task, metric, expected value, tolerance], ...] checked by evaluation.verify_results after
# evaluation (detectron2's key), e.g. [["bbox", "AP", 38.5, 0.2]].
_C.TEST.EXPECTED_RESULTS = []
# Test-time augmentation (detectron2's keys), used by DefaultTrainer.test_with_TTA: each image is
# also run at every short side in MIN_SIZES (long side capped at MAX_SIZE) and, with FLIP, mirrored;
# detections are merged by NMS (masks averaged), semantic probabilities averaged.
_C.TEST.AUG = CN({"ENABLED": False})
_C.TEST.AUG.MIN_SIZES = (400, 500, 600, 700, 800, 900, 1000, 1100, 1200)
_C.TEST.AUG.MAX_SIZE = 4000
_C.TEST.AUG.FLIP = True

# ---------------------------------------------------------------------------- #
# Misc
# ---------------------------------------------------------------------------- #
_C.OUTPUT_DIR = "./output"
# Negative: a different seed every run (logged); >= 0: fully seeded.
_C.SEED = -1
_C.CUDNN_BENCHMARK = False
# Print a console line every this many iterations.
_C.LOG_PERIOD = 20
