"""``add_maskformer2_config``: the config keys of Mask2Former, with upstream's names and defaults.

Every key and default of the official ``mask2former/config.py`` is here, so that its configs (and
configs written for it) merge unchanged. Call it after ``get_cfg()`` (and, for upstream's configs,
after ``seg_research.projects.deeplab.add_deeplab_config``, which adds the poly LR schedule and the
``RESNETS.RES5_MULTI_GRID`` / ``STEM_TYPE`` keys they set), before ``merge_from_file``.
"""
from seg_research.config import CfgNode as CN

__all__ = ["add_maskformer2_config"]


def add_maskformer2_config(cfg: CN) -> None:
    """Add Mask2Former's keys to ``cfg`` in place (``INPUT``, ``SOLVER``, ``MODEL.MASK_FORMER``,
    ``MODEL.SEM_SEG_HEAD``, ``MODEL.SWIN``)."""
    # --- data ---
    # The training dataset mapper: "mask_former_semantic", "mask_former_panoptic", "mask_former_instance",
    # "coco_instance_lsj" or "coco_panoptic_lsj" (upstream's train_net.py picks the mapper by this name).
    cfg.INPUT.DATASET_MAPPER_NAME = "mask_former_semantic"
    # Photometric distortion of SSD (brightness, contrast, saturation, hue) in the MaskFormer mappers.
    cfg.INPUT.COLOR_AUG_SSD = False
    # A random crop is retried (up to 10 times) until no single category covers more than this fraction of
    # the crop's labelled pixels (1.0: any crop is accepted).
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0
    # The MaskFormer mappers pad image and targets to a multiple of this (-1: no padding in the mapper).
    cfg.INPUT.SIZE_DIVISIBILITY = -1

    # --- solver ---
    # Weight decay of embedding parameters (nn.Embedding weights: the queries and level embeddings).
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    # "ADAMW" or "SGD".
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    # The backbone's learning rate is BASE_LR times this.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1

    # --- model ---
    cfg.MODEL.MASK_FORMER = CN()
    mf = cfg.MODEL.MASK_FORMER

    # Losses on the output of every decoder layer (auxiliary losses) as well as the last one.
    mf.DEEP_SUPERVISION = True
    # Weight of the "no object" class in the classification loss.
    mf.NO_OBJECT_WEIGHT = 0.1
    # Weights of the classification, dice and mask (sigmoid cross-entropy) losses, also the matching costs.
    mf.CLASS_WEIGHT = 1.0
    mf.DICE_WEIGHT = 1.0
    mf.MASK_WEIGHT = 20.0

    # Attention heads of the transformer decoder (and of the pixel decoder's deformable encoder).
    mf.NHEADS = 8
    # Dropout of the pixel decoder's transformer encoder (the Mask2Former decoder has none).
    mf.DROPOUT = 0.1
    # Hidden size of the transformer decoder's feed-forward layers.
    mf.DIM_FEEDFORWARD = 2048
    # Encoder layers of MaskFormer's (v1) transformer predictor; unused by Mask2Former.
    mf.ENC_LAYERS = 0
    # Decoder layers plus one: the first prediction, made from the learnable queries alone, counts as a layer.
    mf.DEC_LAYERS = 6
    # LayerNorm before (True) or after (False) each attention / feed-forward block.
    mf.PRE_NORM = False

    # Width of the transformer decoder and of its queries.
    mf.HIDDEN_DIM = 256
    # Number of queries, i.e. of predicted masks per image.
    mf.NUM_OBJECT_QUERIES = 100

    # What the transformer decoder reads: "multi_scale_pixel_decoder" (Mask2Former), or for MaskFormer
    # "transformer_encoder", "pixel_embedding" or a backbone feature name.
    mf.TRANSFORMER_IN_FEATURE = "res5"
    # Project the decoder's inputs with a 1x1 conv even when their width already equals HIDDEN_DIM.
    mf.ENFORCE_INPUT_PROJ = False

    # --- inference ---
    mf.TEST = CN()
    # Which outputs inference returns: "sem_seg", "instances", "panoptic_seg".
    mf.TEST.SEMANTIC_ON = True
    mf.TEST.INSTANCE_ON = False
    mf.TEST.PANOPTIC_ON = False
    # Panoptic: queries whose class score is at or below this are dropped.
    mf.TEST.OBJECT_MASK_THRESHOLD = 0.0
    # Panoptic: a segment keeps its pixels only if at least this fraction of its mask survives the argmax.
    mf.TEST.OVERLAP_THRESHOLD = 0.0
    # Resize the mask logits to the output size before the semantic inference (always so with the
    # panoptic or instance output); False computes the semantic logits first (less memory at high resolution).
    mf.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE = False

    # The batch is padded to a multiple of this (ResNet's own size_divisibility is 0); -1: the backbone's.
    mf.SIZE_DIVISIBILITY = 32

    # --- pixel decoder ---
    # Channels of the per-pixel mask embeddings the queries' mask embeddings are multiplied with.
    cfg.MODEL.SEM_SEG_HEAD.MASK_DIM = 256
    # Layers of the pixel decoder's transformer encoder (the deformable one for MSDeformAttnPixelDecoder).
    cfg.MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS = 0
    # Pixel decoder: "BasePixelDecoder" or "MSDeformAttnPixelDecoder" (looked up in SEM_SEG_HEADS_REGISTRY).
    cfg.MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME = "BasePixelDecoder"

    # --- Swin Transformer backbone (D2SwinTransformer) ---
    cfg.MODEL.SWIN = CN()
    # Image size the ImageNet weights were trained at (sets the absolute position embedding size).
    cfg.MODEL.SWIN.PRETRAIN_IMG_SIZE = 224
    # Side of the square patches of the patch embedding.
    cfg.MODEL.SWIN.PATCH_SIZE = 4
    # Channels of the first stage (doubled at each of the next ones).
    cfg.MODEL.SWIN.EMBED_DIM = 96
    # Blocks per stage.
    cfg.MODEL.SWIN.DEPTHS = [2, 2, 6, 2]
    # Attention heads per stage.
    cfg.MODEL.SWIN.NUM_HEADS = [3, 6, 12, 24]
    # Side of the local attention windows.
    cfg.MODEL.SWIN.WINDOW_SIZE = 7
    # Hidden width of the MLPs relative to the embedding width.
    cfg.MODEL.SWIN.MLP_RATIO = 4.0
    # Bias in the query/key/value projections.
    cfg.MODEL.SWIN.QKV_BIAS = True
    # Attention scale; None: head_dim ** -0.5.
    cfg.MODEL.SWIN.QK_SCALE = None
    # Dropout after the embeddings and in the MLPs.
    cfg.MODEL.SWIN.DROP_RATE = 0.0
    # Dropout of the attention weights.
    cfg.MODEL.SWIN.ATTN_DROP_RATE = 0.0
    # Stochastic depth rate, rising linearly to this over the blocks.
    cfg.MODEL.SWIN.DROP_PATH_RATE = 0.3
    # Absolute position embedding added to the patch embedding.
    cfg.MODEL.SWIN.APE = False
    # LayerNorm after the patch embedding.
    cfg.MODEL.SWIN.PATCH_NORM = True
    # Stages returned (strides 4, 8, 16, 32).
    cfg.MODEL.SWIN.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    # Activation checkpointing of the blocks (less memory, more compute).
    cfg.MODEL.SWIN.USE_CHECKPOINT = False

    # --- Mask2Former additions ---
    # Transformer decoder, looked up in TRANSFORMER_DECODER_REGISTRY.
    mf.TRANSFORMER_DECODER_NAME = "MultiScaleMaskedTransformerDecoder"

    # Large-scale jitter of the COCO "lsj" mappers: resize by a random factor in [MIN_SCALE, MAX_SCALE]
    # of IMAGE_SIZE, then crop / pad to IMAGE_SIZE x IMAGE_SIZE.
    cfg.INPUT.IMAGE_SIZE = 1024
    cfg.INPUT.MIN_SCALE = 0.1
    cfg.INPUT.MAX_SCALE = 2.0

    # Backbone features the deformable encoder of MSDeformAttnPixelDecoder attends over.
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES = ["res3", "res4", "res5"]
    # Sampling points per head and level of its deformable attention.
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS = 4
    # Heads of its deformable attention.
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS = 8

    # --- point-sampled losses ---
    # Points sampled per mask for the mask and dice losses and the matching costs.
    mf.TRAIN_NUM_POINTS = 112 * 112
    # Candidate points drawn, as a multiple of TRAIN_NUM_POINTS, before importance sampling (PointRend's k).
    mf.OVERSAMPLE_RATIO = 3.0
    # Fraction of the points taken among the most uncertain candidates (PointRend's beta); the rest are uniform.
    mf.IMPORTANCE_SAMPLE_RATIO = 0.75
