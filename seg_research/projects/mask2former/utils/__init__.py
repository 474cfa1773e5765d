"""Helpers of the Mask2Former project: point sampling for the point-based mask losses."""
from .point_features import calculate_uncertainty, get_uncertain_point_coords_with_randomness, point_sample

__all__ = ["point_sample", "get_uncertain_point_coords_with_randomness", "calculate_uncertainty"]
