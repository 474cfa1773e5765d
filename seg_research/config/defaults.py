"""Default configuration: detectron2 v0.6's ``get_cfg()``, key for key and value for value, plus the
keys of seg_research's own features (marked "seg_research:"), whose defaults leave detectron2's
behaviour unchanged.

One difference: ``MODEL.DEVICE`` is "cuda" when torch sees a GPU and "cpu" otherwise (detectron2:
always "cuda"). A detectron2 config file therefore means the same model here; configs of our own
(Shapes, PH2, MADS, projects) set explicitly whatever they want different from these defaults.

Keys of detectron2 features seg_research does not have (RetinaNet, keypoints, cascade heads,
deformable convolutions, rotated anchors, precomputed proposals) exist at their defaults so that
every detectron2 config merges; turning one of them on stops the build with an error naming the key
(``config/unsupported.py``).

Units: sizes in pixels of the resized input unless stated; SOLVER.STEPS / MAX_ITER / WARMUP_ITERS /
CHECKPOINT_PERIOD / TEST.EVAL_PERIOD / VIS_PERIOD / LOG_PERIOD in iterations; learning rates per
iteration at IMS_PER_BATCH.
"""
import torch

from .config import CfgNode as CN

__all__ = ["get_cfg"]


def get_cfg() -> CN:
    """A fresh copy of the default config below (``_C``), to merge files and overrides into.

    ``MODEL.DEVICE`` is resolved here, per call: "cuda" when a GPU is visible, else "cpu"."""
    cfg = _C.clone()
    cfg.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
    return cfg


_C = CN()
# Config format version; detectron2's current one. Read by nothing but kept for detectron2's files.
_C.VERSION = 2

# ---------------------------------------------------------------------------- #
# Model
# ---------------------------------------------------------------------------- #
_C.MODEL = CN()
# Precomputed proposals from DATASETS.PROPOSAL_FILES_* instead of an RPN: not supported here.
_C.MODEL.LOAD_PROPOSALS = False
# GeneralizedRCNN / PanopticFPN: build and train the ROI mask head, predict pred_masks.
_C.MODEL.MASK_ON = False
# Keypoint R-CNN's keypoint head: not supported here (True stops the build).
_C.MODEL.KEYPOINT_ON = False
# torch device of the model and its inputs: "cpu", "cuda", "cuda:N". Set by get_cfg() to "cuda"
# when a GPU is visible, else "cpu" (detectron2's default is always "cuda").
_C.MODEL.DEVICE = "cpu"
# Name in META_ARCH_REGISTRY: GeneralizedRCNN, SemanticSegmentor, PanopticFPN, or a project's.
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
# Checkpoint to start from (ours .pth, detectron2 .pkl/.pth, MSRA/FAIR Caffe2 .pkl, torchvision
# ResNet): a path, "detectron2://...", or an https URL (downloaded into $SEG_RESEARCH_CACHE).
# "" starts from random initialisation. --resume prefers OUTPUT_DIR/last_checkpoint over it.
_C.MODEL.WEIGHTS = ""
# Per-channel mean and std subtracted / divided from the input image, in INPUT.FORMAT's channel
# order and 0-255 scale. detectron2's defaults suit its MSRA ImageNet weights (BGR, std 1);
# torchvision's ImageNet weights want RGB, mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375].
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
_C.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]
# seg_research: inference precision (DefaultPredictor, tools/demo.py, evaluation): "fp32", or
# "bf16" / "fp16" / "auto" for a forward pass under torch.autocast (see SOLVER.AMP); outputs are
# returned in float32.
_C.MODEL.PRECISION = "fp32"
# seg_research: DistributedDataParallel's find_unused_parameters; True for models whose forward
# leaves some parameters without gradient (read by engine.defaults.create_ddp_model).
_C.MODEL.DDP = CN()
_C.MODEL.DDP.FIND_UNUSED_PARAMETERS = False
# seg_research: torch.compile the model's parts in place when it is built (build_model; so for
# training, evaluation, DefaultPredictor and tools/benchmark.py alike). State dicts keep their keys.
# Off by default: on a 2-core CPU the first steps spend about a minute compiling and the gain is
# small (benchmarks/README.md, "torch.compile").
_C.MODEL.COMPILE = CN()
_C.MODEL.COMPILE.ENABLED = False
# Dotted names of the submodules to compile, e.g. "backbone", "sem_seg_head", "roi_heads.box_head",
# "roi_heads.mask_head", "proposal_generator"; "" compiles the whole model.
_C.MODEL.COMPILE.PARTS = ["backbone"]
# torch.compile's mode: "default", "reduce-overhead", "max-autotune" or "max-autotune-no-cudagraphs".
_C.MODEL.COMPILE.MODE = "default"

# ---------------------------------------------------------------------------- #
# Backbone
# ---------------------------------------------------------------------------- #
_C.MODEL.BACKBONE = CN()
# Name in BACKBONE_REGISTRY: build_resnet_backbone (C4, DC5: a plain ResNet), build_resnet_fpn_backbone.
_C.MODEL.BACKBONE.NAME = "build_resnet_backbone"
# Stages 1..FREEZE_AT are frozen (requires_grad False; FrozenBN for their norms): 0 nothing,
# 1 the stem, 2 stem + res2 (detectron2's default for ImageNet-initialised models), ... 5 everything.
_C.MODEL.BACKBONE.FREEZE_AT = 2

# Feature Pyramid Network (build_resnet_fpn_backbone).
_C.MODEL.FPN = CN()
# Backbone outputs the pyramid is built on, finest first, e.g. ["res2", "res3", "res4", "res5"];
# the FPN outputs p2..p5 (and p6 from p5 by stride-2 max pooling).
_C.MODEL.FPN.IN_FEATURES = []
# Channels of every pyramid level.
_C.MODEL.FPN.OUT_CHANNELS = 256
# Norm of the lateral and output convs: "" (none), "GN", "BN", "SyncBN", "FrozenBN".
_C.MODEL.FPN.NORM = ""
# How a top-down feature joins its lateral: "sum" or "avg".
_C.MODEL.FPN.FUSE_TYPE = "sum"

# ---------------------------------------------------------------------------- #
# Proposal generator
# ---------------------------------------------------------------------------- #
_C.MODEL.PROPOSAL_GENERATOR = CN()
# Name in PROPOSAL_GENERATOR_REGISTRY: "RPN" (detectron2's "RRPN", "PrecomputedProposals": not supported).
_C.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
# Proposals with a side shorter than this (pixels of the resized input) are dropped.
_C.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 0

# Anchors of the RPN.
_C.MODEL.ANCHOR_GENERATOR = CN()
# Name in ANCHOR_GENERATOR_REGISTRY: "DefaultAnchorGenerator" ("RotatedAnchorGenerator": not supported).
_C.MODEL.ANCHOR_GENERATOR.NAME = "DefaultAnchorGenerator"
# Anchor sizes (sqrt of area, input pixels): one list per feature map of RPN.IN_FEATURES, or a single
# list used for every map. FPN configs give one size per level ([[32], [64], [128], [256], [512]]).
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
# Height / width ratios, one list per feature map or one for all.
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
# Angles (degrees) of rotated anchors; read only by detectron2's RotatedAnchorGenerator (not supported).
_C.MODEL.ANCHOR_GENERATOR.ANGLES = [[-90, 0, 90]]
# Anchor centres at (i + OFFSET) * stride; detectron2 uses 0.0, 0.5 centres them in their cell.
_C.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0
# seg_research: round the cell anchors to whole pixels: True for weights trained with torchvision
# (its anchors are rounded), False (detectron2's exact anchors) for detectron2's and our own.
_C.MODEL.ANCHOR_GENERATOR.ROUND_CELLS = False

_C.MODEL.RPN = CN()
# Name in RPN_HEAD_REGISTRY.
_C.MODEL.RPN.HEAD_NAME = "StandardRPNHead"
# Feature maps the RPN runs on: ["res4"] for C4/DC5 backbones, p2..p6 with FPN.
_C.MODEL.RPN.IN_FEATURES = ["res4"]
# Anchors extending more than this many pixels outside the image are ignored in training;
# negative keeps every anchor.
_C.MODEL.RPN.BOUNDARY_THRESH = -1
# IoU thresholds splitting anchors into the IOU_LABELS (0 background, -1 ignored, 1 foreground):
# IoU < 0.3 -> 0, [0.3, 0.7) -> -1, >= 0.7 -> 1 (plus each GT box's best anchor).
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
_C.MODEL.RPN.IOU_LABELS = [0, -1, 1]
# Anchors sampled per image for the RPN losses, and the largest foreground share of them.
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
# Box regression loss: "smooth_l1" (SMOOTH_L1_BETA 0 makes it L1), "giou", "diou", "ciou".
_C.MODEL.RPN.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RPN.BBOX_REG_LOSS_WEIGHT = 1.0
# Weights (dx, dy, dw, dh) of the anchor-to-box transform.
_C.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RPN.SMOOTH_L1_BETA = 0.0
# Multiplies both RPN losses.
_C.MODEL.RPN.LOSS_WEIGHT = 1.0
# Top-scoring anchors kept before NMS (per feature map with FPN), and proposals kept after NMS
# (per image; per feature map then per image with FPN), in training and at test time.
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
# IoU threshold of the proposals' NMS.
_C.MODEL.RPN.NMS_THRESH = 0.7
# Channels of the RPN head's hidden 3x3 convs; [-1]: one conv with the input's channels.
_C.MODEL.RPN.CONV_DIMS = [-1]

# ---------------------------------------------------------------------------- #
# ROI heads
# ---------------------------------------------------------------------------- #
_C.MODEL.ROI_HEADS = CN()
# Name in ROI_HEADS_REGISTRY: "Res5ROIHeads" (C4: res5 runs on each ROI), "StandardROIHeads"
# (FPN, DC5: separate box and mask heads). "CascadeROIHeads": not supported.
_C.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
# Foreground classes (background not counted); must equal len(thing_classes) of the datasets.
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
# Feature maps the ROIs are pooled from.
_C.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
# A proposal whose best IoU with a GT box is below 0.5 is background (label 0), else foreground.
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
_C.MODEL.ROI_HEADS.IOU_LABELS = [0, 1]
# ROIs sampled per image for the box head's losses, and the largest foreground share of them.
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
# At test time detections scoring below SCORE_THRESH_TEST are dropped, then per-class NMS at
# NMS_THRESH_TEST, then the TEST.DETECTIONS_PER_IMAGE best are kept.
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
# Training adds the GT boxes to the proposals so the heads see perfect boxes from the first
# iteration, when the RPN still proposes almost nothing useful.
_C.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True

_C.MODEL.ROI_BOX_HEAD = CN()
# Name in ROI_BOX_HEAD_REGISTRY ("FastRCNNConvFCHead"); "" for Res5ROIHeads, whose box head is res5.
_C.MODEL.ROI_BOX_HEAD.NAME = ""
# Box regression loss ("smooth_l1", "giou", "diou", "ciou"), its weight, the (dx, dy, dw, dh)
# transform weights and smooth-L1's beta (0: L1).
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT = 1.0
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0
# Output side of the ROI pooler (cells), its samples per cell (0: adaptive) and its type
# ("ROIAlignV2": aligned, half-pixel corrected; "ROIAlign"; "ROIPool").
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
# FastRCNNConvFCHead: NUM_CONV 3x3 convs of CONV_DIM channels, then NUM_FC linears of FC_DIM.
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 0
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.NUM_CONV = 0
_C.MODEL.ROI_BOX_HEAD.CONV_DIM = 256
# Norm of the head's convs: "", "GN", "BN", "SyncBN".
_C.MODEL.ROI_BOX_HEAD.NORM = ""
# One box regression for all classes instead of one per class.
_C.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = False
# Train the mask head on the box head's predicted boxes instead of the proposals: not supported.
_C.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES = False

# Cascade R-CNN's per-stage regression weights and IoU thresholds; read only by detectron2's
# CascadeROIHeads (not supported).
_C.MODEL.ROI_BOX_CASCADE_HEAD = CN()
_C.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS = (
    (10.0, 10.0, 5.0, 5.0),
    (20.0, 20.0, 10.0, 10.0),
    (30.0, 30.0, 15.0, 15.0),
)
_C.MODEL.ROI_BOX_CASCADE_HEAD.IOUS = (0.5, 0.6, 0.7)

_C.MODEL.ROI_MASK_HEAD = CN()
# Name in ROI_MASK_HEAD_REGISTRY.
_C.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
# Pooler side (cells; the mask is twice that after the head's upsampling), samples per cell, type.
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
# 3x3 convs before the upsampling and their channels (Res5ROIHeads: 0, the head sees res5).
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
# Norm of the head's convs: "", "GN", "BN", "SyncBN".
_C.MODEL.ROI_MASK_HEAD.NORM = ""
# One mask for all classes instead of one per class.
_C.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = False
_C.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"

# Keypoint head of Keypoint R-CNN: read only when MODEL.KEYPOINT_ON (not supported).
_C.MODEL.ROI_KEYPOINT_HEAD = CN()
_C.MODEL.ROI_KEYPOINT_HEAD.NAME = "KRCNNConvDeconvUpsampleHead"
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = tuple(512 for _ in range(8))
_C.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = 17
_C.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE = 1
_C.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS = True
_C.MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT = 1.0
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE = "ROIAlignV2"

# ---------------------------------------------------------------------------- #
# Semantic segmentation head (SemanticSegmentor, PanopticFPN's stuff branch)
# ---------------------------------------------------------------------------- #
_C.MODEL.SEM_SEG_HEAD = CN()
# Name in SEM_SEG_HEADS_REGISTRY: SemSegFPNHead, or a project's (FCNHead, DeepLabV3PlusHead, ...).
_C.MODEL.SEM_SEG_HEAD.NAME = "SemSegFPNHead"
# Feature maps the head reads.
_C.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
# Label value excluded from the loss and from evaluation.
_C.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255
# Classes predicted, len(stuff_classes) of the dataset; PanopticFPN: the stuff classes + 1 ("things").
_C.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 54
# Channels of the head's convs.
_C.MODEL.SEM_SEG_HEAD.CONVS_DIM = 128
# Stride (input pixels) at which the head fuses its inputs and predicts, before upsampling.
_C.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 4
# Norm of the head's convs: "GN", "BN", "SyncBN", "".
_C.MODEL.SEM_SEG_HEAD.NORM = "GN"
# Multiplies the head's loss (PanopticFPN configs use 0.5).
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT = 1.0
# seg_research: loss terms, names from seg_research.modeling.losses.LOSS_REGISTRY ("cross_entropy",
# "dice", "bce_dice" (2 classes), "focal", "lovasz_softmax"), each multiplied by its entry of
# LOSS_WEIGHTS (and by LOSS_WEIGHT); logged as loss_sem_seg (cross_entropy) and loss_sem_seg_<name>.
_C.MODEL.SEM_SEG_HEAD.LOSS_TYPES = ("cross_entropy",)
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHTS = (1.0,)
# seg_research: gamma of the "focal" loss (0 gives the cross-entropy).
_C.MODEL.SEM_SEG_HEAD.FOCAL_GAMMA = 2.0
# seg_research: SemanticSegmentor's auxiliary FCN head (a SemSegFPNHead on these backbone features,
# the same classes and losses), trained only and weighted by AUX_LOSS_WEIGHT; it gives the middle of
# a network trained from scratch a short gradient path (PSPNet's and mmsegmentation's
# "auxiliary_head", on res4 with weight 0.4). [] for none.
_C.MODEL.SEM_SEG_HEAD.AUX_IN_FEATURES = []
_C.MODEL.SEM_SEG_HEAD.AUX_LOSS_WEIGHT = 0.4

_C.MODEL.PANOPTIC_FPN = CN()
# Multiplies the instance branch's losses (the semantic one has SEM_SEG_HEAD.LOSS_WEIGHT).
_C.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT = 1.0
# Panoptic inference: instances scoring >= INSTANCES_CONFIDENCE_THRESH are pasted first (best
# first; one overlapping its already-pasted pixels by more than OVERLAP_THRESH of its area is
# dropped), then each stuff class covering >= STUFF_AREA_LIMIT free pixels (output resolution).
# ENABLED False: the model returns instances and sem_seg only.
_C.MODEL.PANOPTIC_FPN.COMBINE = CN()
_C.MODEL.PANOPTIC_FPN.COMBINE.ENABLED = True
_C.MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH = 0.5
_C.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 4096
_C.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.5

# RetinaNet: read only when META_ARCHITECTURE is "RetinaNet" (not supported).
_C.MODEL.RETINANET = CN()
_C.MODEL.RETINANET.NUM_CLASSES = 80
_C.MODEL.RETINANET.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
_C.MODEL.RETINANET.NUM_CONVS = 4
_C.MODEL.RETINANET.IOU_THRESHOLDS = [0.4, 0.5]
_C.MODEL.RETINANET.IOU_LABELS = [0, -1, 1]
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
_C.MODEL.RETINANET.SCORE_THRESH_TEST = 0.05
_C.MODEL.RETINANET.TOPK_CANDIDATES_TEST = 1000
_C.MODEL.RETINANET.NMS_THRESH_TEST = 0.5
_C.MODEL.RETINANET.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RETINANET.FOCAL_LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.FOCAL_LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.SMOOTH_L1_LOSS_BETA = 0.1
_C.MODEL.RETINANET.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RETINANET.NORM = ""

# ---------------------------------------------------------------------------- #
# ResNet (build_resnet_backbone, build_resnet_fpn_backbone)
# ---------------------------------------------------------------------------- #
_C.MODEL.RESNETS = CN()
# 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).
_C.MODEL.RESNETS.DEPTH = 50
# Stages returned: "stem", "res2".."res5".
_C.MODEL.RESNETS.OUT_FEATURES = ["res4"]
# Groups of the 3x3 convs (1: ResNet; 32 with WIDTH_PER_GROUP 8: ResNeXt-32x8d).
_C.MODEL.RESNETS.NUM_GROUPS = 1
# Norm of every conv: "FrozenBN" (fixed statistics, for ImageNet weights), "BN", "SyncBN", "GN".
_C.MODEL.RESNETS.NORM = "FrozenBN"
# Channels per group of res2's 3x3 convs (doubling each stage).
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
# Stride 2 of a bottleneck in its first 1x1 conv (MSRA/Caffe2 weights, detectron2's default) or in
# its 3x3 conv (False: torchvision's and FAIR's ResNets).
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
# Dilation of res5 in place of its stride 2: 1 (output stride 32) or 2 (16: the "DC5" models).
_C.MODEL.RESNETS.RES5_DILATION = 1
# seg_research: the same for res4 (RES4_DILATION 2 with RES5_DILATION 4 gives output stride 8, DeepLab).
_C.MODEL.RESNETS.RES4_DILATION = 1
# seg_research: dilation of the first block of a dilated stage: "detectron2" (the stage's own, as
# detectron2 builds DC5) or "torchvision" (replace_stride_with_dilation: the previous stage's);
# the same parameters either way.
_C.MODEL.RESNETS.DILATION_CONVENTION = "detectron2"
# Output channels of res2 (64 for ResNet-18/34) and of the stem.
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
# Deformable convolutions in res2..res5: not supported (any True stops the build).
_C.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, False]
_C.MODEL.RESNETS.DEFORM_MODULATED = False
_C.MODEL.RESNETS.DEFORM_NUM_GROUPS = 1

# ---------------------------------------------------------------------------- #
# Input and augmentation (data.build, DatasetMapper)
# ---------------------------------------------------------------------------- #
_C.INPUT = CN()
# Shortest edge at train time: one value picked from the tuple ("choice") or a random integer in
# [min, max] ("range"); the longest edge is then capped at MAX_SIZE_TRAIN.
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
_C.INPUT.MAX_SIZE_TRAIN = 1333
# Shortest / longest edge at test time; MIN_SIZE_TEST 0 disables resizing.
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
# Random flip at train time: "horizontal", "vertical" or "none".
_C.INPUT.RANDOM_FLIP = "horizontal"
# Random crop at train time, before resizing. TYPE "relative" / "relative_range" (SIZE is a
# fraction of the image), "absolute" / "absolute_range" (pixels), detectron2 semantics.
_C.INPUT.CROP = CN({"ENABLED": False})
_C.INPUT.CROP.TYPE = "relative_range"
_C.INPUT.CROP.SIZE = [0.9, 0.9]
# Channel order the model takes: "BGR", "RGB" or "L".
_C.INPUT.FORMAT = "BGR"
# How instance masks travel through the mapper: "polygon" or "bitmask".
_C.INPUT.MASK_FORMAT = "polygon"
# seg_research: multiplicative brightness / contrast jitter ranges at train time; (1.0, 1.0) disables.
_C.INPUT.BRIGHTNESS = (1.0, 1.0)
_C.INPUT.CONTRAST = (1.0, 1.0)

# ---------------------------------------------------------------------------- #
# Datasets and loader
# ---------------------------------------------------------------------------- #
_C.DATASETS = CN()
# Names registered in DatasetCatalog: a tuple, even for one (("shapes_train",), note the comma).
_C.DATASETS.TRAIN = ()
# Precomputed proposal files per training dataset and the proposals kept per image: not supported.
_C.DATASETS.PROPOSAL_FILES_TRAIN = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN = 2000
# Datasets evaluated by DefaultTrainer.test (each with its own evaluator).
_C.DATASETS.TEST = ()
_C.DATASETS.PROPOSAL_FILES_TEST = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST = 1000

_C.DATALOADER = CN()
# Loader worker processes per training process (0: load in the main process).
_C.DATALOADER.NUM_WORKERS = 4
# Batch images of the same orientation (width > height or not) together, as detectron2 does.
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
# "TrainingSampler" (infinite shuffled stream) or "RepeatFactorTrainingSampler" (LVIS-style
# oversampling of images holding rare classes, REPEAT_THRESHOLD the frequency below which).
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
# Drop training images without any (non-crowd) annotation; the count is logged.
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True
# seg_research: what a training draw does when its sample cannot be read or is malformed (DataError):
# "error" stops training; "skip" logs the file once, draws a seeded replacement and counts it as
# data/skipped_samples in metrics.json.
_C.DATALOADER.ON_BAD_SAMPLE = "error"

# ---------------------------------------------------------------------------- #
# Solver
# ---------------------------------------------------------------------------- #
_C.SOLVER = CN()
# "WarmupMultiStepLR" (x GAMMA at each of STEPS), "WarmupCosineLR" (to BASE_LR_END at MAX_ITER),
# seg_research's "WarmupConstantLR".
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
# Training length.
_C.SOLVER.MAX_ITER = 40000
# Learning rate after warm-up, for IMS_PER_BATCH images per iteration.
_C.SOLVER.BASE_LR = 0.001
# seg_research: learning rate WarmupCosineLR ends at (detectron2 v0.6: always 0).
_C.SOLVER.BASE_LR_END = 0.0
# SGD's momentum and Nesterov switch.
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
# L2 weight decay; WEIGHT_DECAY_NORM for the parameters of norm layers.
_C.SOLVER.WEIGHT_DECAY = 0.0001
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
# Learning-rate multiplier at each of STEPS (WarmupMultiStepLR).
_C.SOLVER.GAMMA = 0.1
# Iterations where the learning rate is multiplied by GAMMA.
_C.SOLVER.STEPS = (30000,)
# Warm-up: the factor the learning rate starts at, its length and shape ("linear" or "constant").
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"
# Save OUTPUT_DIR/model_NNNNNNN.pth every this many iterations (and model_final.pth at the end).
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Images per iteration over all processes (divided evenly among them).
_C.SOLVER.IMS_PER_BATCH = 16
# The number of processes the solver settings were written for: when > 0 and training runs on a
# different number, DefaultTrainer.auto_scale_workers scales IMS_PER_BATCH and BASE_LR linearly
# and MAX_ITER, STEPS, WARMUP_ITERS, EVAL_PERIOD, CHECKPOINT_PERIOD inversely (detectron2's rule).
# 0 disables it.
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
# Learning rate and weight decay of biases: BASE_LR * BIAS_LR_FACTOR; WEIGHT_DECAY_BIAS None means
# WEIGHT_DECAY.
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None
# Gradient clipping before each step: "value" clips every element to +-CLIP_VALUE, "norm" each
# parameter's gradient norm (NORM_TYPE: 2.0, "inf") to CLIP_VALUE.
_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# Automatic mixed precision: the forward pass under torch.autocast (parameters, optimizer state,
# BN statistics, losses and checkpoints stay float32).
_C.SOLVER.AMP = CN({"ENABLED": False})
# seg_research: "auto" is fp16 with a GradScaler on CUDA (detectron2's behaviour) and bf16 on a CPU;
# or "bf16", "fp16", "fp32". A CPU without native bf16 kernels says so and trains in fp32.
_C.SOLVER.AMP.PRECISION = "auto"
# seg_research: "SGD" (detectron2's) or "AdamW" (with BETAS).
_C.SOLVER.OPTIMIZER = "SGD"
_C.SOLVER.BETAS = (0.9, 0.999)
# seg_research: on a NaN/infinite loss, False raises FloatingPointError with the iteration and the
# loss dict; True skips that optimizer step (gradients zeroed), counted as nonfinite_steps_skipped.
_C.SOLVER.SKIP_NONFINITE_STEPS = False
# seg_research: gradient accumulation, an integer N >= 1 read by DefaultTrainer (the step trainer)
# and data.build's train loader: each iteration takes N micro-batches of IMS_PER_BATCH / N images
# (over all processes; IMS_PER_BATCH must divide by N x processes), backpropagates each loss / N
# and steps the optimizer once. MAX_ITER, STEPS, the LR schedule, CHECKPOINT_PERIOD, EVAL_PERIOD
# and metrics count optimizer steps. 1: one batch per step (detectron2's behaviour).
_C.SOLVER.GRADIENT_ACCUMULATION_STEPS = 1
# seg_research: keep OUTPUT_DIR/model_best.pth, the checkpoint whose evaluation scored best on
# METRIC (a flattened result name: "segm/AP", "bbox/AP", "sem_seg/mIoU", "panoptic_seg/PQ";
# "<dataset>/segm/AP" with several DATASETS.TEST), higher better with MODE "max", lower with "min"
# (engine.hooks.BestCheckpointer, registered by DefaultTrainer at each TEST.EVAL_PERIOD evaluation
# and the final one). PATIENCE N > 0 stops training after N evaluations in a row without
# improvement (model_final.pth written at the stopping iteration); 0 never stops.
_C.SOLVER.BEST_CHECKPOINTER = CN({"ENABLED": False})
_C.SOLVER.BEST_CHECKPOINTER.METRIC = ""
_C.SOLVER.BEST_CHECKPOINTER.MODE = "max"
_C.SOLVER.BEST_CHECKPOINTER.PATIENCE = 0

# ---------------------------------------------------------------------------- #
# Model EMA (d2go's keys; read by engine.defaults.DefaultTrainer and train_net's --eval-only)
# ---------------------------------------------------------------------------- #
# seg_research: keep an exponential moving average of the weights, updated after every optimizer
# step, saved in checkpoints (entry "ema_state"), and evaluated during training in place of the
# raw weights (training continues on the raw ones).
_C.MODEL_EMA = CN()
_C.MODEL_EMA.ENABLED = False
# Weight of the old average per update, in [0, 1): ema = DECAY * ema + (1 - DECAY) * weights.
_C.MODEL_EMA.DECAY = 0.999
# Device of the average: "" the model's, or e.g. "cpu" to spare GPU memory.
_C.MODEL_EMA.DEVICE = ""
# With ENABLED, --eval-only loads the checkpoint's EMA weights (its "ema_state") into the model
# instead of its raw weights.
_C.MODEL_EMA.USE_EMA_WEIGHTS_FOR_EVAL_ONLY = False

# ---------------------------------------------------------------------------- #
# Test
# ---------------------------------------------------------------------------- #
_C.TEST = CN()
# [[task, metric, expected value, tolerance], ...] checked by evaluation.verify_results after
# evaluation, e.g. [["bbox", "AP", 38.5, 0.2]].
_C.TEST.EXPECTED_RESULTS = []
# Evaluate every EVAL_PERIOD iterations during training (0: only after the last one).
_C.TEST.EVAL_PERIOD = 0
# Per-keypoint OKS sigmas of keypoint evaluation; read only by keypoint models (not supported).
_C.TEST.KEYPOINT_OKS_SIGMAS = []
# Detections kept per image after NMS.
_C.TEST.DETECTIONS_PER_IMAGE = 100
# Test-time augmentation, used by DefaultTrainer.test_with_TTA: each image is also run at every
# short side in MIN_SIZES (long side capped at MAX_SIZE) and, with FLIP, mirrored; detections are
# merged by NMS (masks averaged), semantic probabilities averaged.
_C.TEST.AUG = CN({"ENABLED": False})
_C.TEST.AUG.MIN_SIZES = (400, 500, 600, 700, 800, 900, 1000, 1100, 1200)
_C.TEST.AUG.MAX_SIZE = 4000
_C.TEST.AUG.FLIP = True
# Before each evaluation, recompute the BatchNorm statistics over NUM_ITER training batches
# (engine.hooks.PreciseBN), for models with BN layers in training mode.
_C.TEST.PRECISE_BN = CN({"ENABLED": False})
_C.TEST.PRECISE_BN.NUM_ITER = 200
# seg_research: evaluators that can also write per-image predictions into
# OUTPUT_DIR/inference/<dataset>/ do so (SemSegEvaluator: sem_seg_predictions.json), for
# tools/visualize.py --predictions.
_C.TEST.SAVE_PREDICTIONS = True
# seg_research: COCOPanopticEvaluator scores PQ with hotcoco's Rust evaluator (same counts) when
# hotcoco imports; False forces ours (evaluation.panoptic_quality, the reference).
_C.TEST.PANOPTIC_USE_FAST_IMPL = True
# seg_research: processes computing PQ with ours, per rank: 0 computes in the evaluating process;
# N > 0 uses a pool of N processes over chunks of images (one image in memory per process).
_C.TEST.PANOPTIC_NUM_WORKERS = 0

# ---------------------------------------------------------------------------- #
# Misc
# ---------------------------------------------------------------------------- #
# Where config.yaml, log.txt, metrics.json, events, checkpoints and inference/ are written.
_C.OUTPUT_DIR = "./output"
# Negative: a different seed every run (logged); >= 0: fully seeded.
_C.SEED = -1
# torch.backends.cudnn.benchmark (CUDA only).
_C.CUDNN_BENCHMARK = False
# Every VIS_PERIOD training iterations GeneralizedRCNN writes an image of the GT boxes beside its
# top proposals to the event storage (TensorBoard); 0 disables.
_C.VIS_PERIOD = 0
# seg_research: print a console line every this many iterations.
_C.LOG_PERIOD = 20

# detectron2 keeps a placeholder global namespace; nothing reads it.
_C.GLOBAL = CN()
_C.GLOBAL.HACK = 1.0
