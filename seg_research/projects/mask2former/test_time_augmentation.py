"""``SemanticSegmentorWithTTA`` for MaskFormer: the library's semantic TTA, averaging the ``sem_seg``
scores of the augmented copies as they are (upstream's), since MaskFormer's semantic output is already
a sum of class probabilities times mask probabilities, not logits."""
from seg_research.modeling.test_time_augmentation import TTA_WRAPPERS
from seg_research.modeling.test_time_augmentation import SemanticSegmentorWithTTA as _LibrarySemanticTTA

from .maskformer_model import MaskFormer

__all__ = ["SemanticSegmentorWithTTA"]


class SemanticSegmentorWithTTA(_LibrarySemanticTTA):
    """Test-time augmentation (``TEST.AUG``: resized and flipped copies) of a :class:`MaskFormer`'s semantic
    output: ``{"sem_seg": (K, height, width)}``, the mean of the copies' (un-flipped) scores."""

    softmax_outputs = False


# build_tta_model (the engine's TEST.AUG path) wraps MaskFormer in this one
TTA_WRAPPERS[MaskFormer] = SemanticSegmentorWithTTA
