"""``ShapeSpec``: what a module knows about a feature map before seeing one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["ShapeSpec"]


@dataclass(frozen=True)
class ShapeSpec:
    """Static description of a (N, C, H, W) feature map; unknown fields are ``None``.

    Attributes:
        channels: C.
        height, width: H and W in pixels of that feature map (rarely known in advance).
        stride: input pixels per feature-map pixel (e.g. 4 for ``res2``/``p2``).
    """

    channels: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    stride: Optional[int] = None
