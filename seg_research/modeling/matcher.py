"""Assign each prediction (anchor or proposal) to a ground-truth box, on torchvision's ``Matcher``."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torchvision.models.detection._utils import Matcher as _TorchvisionMatcher

__all__ = ["Matcher"]


class Matcher:
    """detectron2's interface: IoU thresholds split predictions into bands with a label each.

    With ``thresholds=[0.3, 0.7]`` and ``labels=[0, -1, 1]``: best IoU < 0.3 is labelled 0
    (background), 0.3 <= IoU < 0.7 is -1 (ignored), IoU >= 0.7 is 1 (foreground). With one
    threshold ``[0.5]`` and labels ``[0, 1]`` there is no ignore band.
    """

    def __init__(self, thresholds: Sequence[float], labels: Sequence[int], allow_low_quality_matches: bool = False):
        """
        Args:
            thresholds: 1 or 2 increasing IoU thresholds.
            labels: one label per band (``len(thresholds) + 1``), each -1, 0 or 1.
            allow_low_quality_matches: also label 1 the predictions that have the highest IoU
                with some ground truth (ties included), even below the top threshold.
        """
        thresholds, labels = list(thresholds), [int(label) for label in labels]
        if len(thresholds) not in (1, 2) or thresholds != sorted(thresholds):
            raise ValueError(f"Matcher thresholds must be 1 or 2 increasing IoU values, got {thresholds}.")
        if len(labels) != len(thresholds) + 1 or any(label not in (-1, 0, 1) for label in labels):
            raise ValueError(f"Matcher needs {len(thresholds) + 1} labels in (-1, 0, 1) for thresholds "
                             f"{thresholds}, got {labels}.")
        self.thresholds = thresholds
        self.labels = labels
        self.allow_low_quality_matches = allow_low_quality_matches
        self._matcher = _TorchvisionMatcher(thresholds[-1], thresholds[0], allow_low_quality_matches)

    def __call__(self, match_quality_matrix: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            match_quality_matrix: float (M, N) IoU of M ground-truth boxes with N predictions.

        Returns:
            matches: int64 (N,) index of the best ground truth of each prediction (0 when M is 0).
            match_labels: int8 (N,) band label of each prediction (``labels[0]`` when M is 0).
        """
        num_predictions = match_quality_matrix.shape[1]
        device = match_quality_matrix.device
        if match_quality_matrix.shape[0] == 0 or num_predictions == 0:
            matches = torch.zeros(num_predictions, dtype=torch.int64, device=device)
            return matches, torch.full((num_predictions,), self.labels[0], dtype=torch.int8, device=device)
        raw = self._matcher(match_quality_matrix)
        # torchvision: >= 0 matched (top band or low-quality match), -1 below the low threshold,
        # -2 between the thresholds (only with 2 thresholds).
        band_labels = torch.tensor(self._band_labels(), dtype=torch.int8, device=device)
        match_labels = band_labels[torch.clamp(raw, max=0) + 2]
        matches = torch.where(raw >= 0, raw, match_quality_matrix.argmax(dim=0))
        return matches, match_labels

    def _band_labels(self) -> List[int]:
        """Labels indexed by torchvision's code + 2: [between, below, matched]."""
        return [self.labels[1] if len(self.thresholds) == 2 else self.labels[0], self.labels[0], self.labels[-1]]
