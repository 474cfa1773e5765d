"""Colours of drawings: a palette of well-separated hues, class colours, shades, and colour parsing.

Colours are RGB triples of ints 0..255 unless a function says otherwise. The names
:func:`colormap` and :func:`random_color` (and their ``rgb``/``maximum`` arguments) are those
of detectron2's ``utils/colormap.py``; the palette itself is generated here (golden-ratio
hue steps at three saturation/value levels), not copied.
"""
from __future__ import annotations

import colorsys
import functools
from typing import Any, Protocol, Sequence, Tuple

import numpy as np
from matplotlib import colors as mpl_colors

__all__ = ["Color", "ClassColors", "colormap", "random_color", "class_color", "shade_color", "scale_color", "to_rgb255"]

Color = Tuple[int, int, int]


class ClassColors(Protocol):
    """What :func:`class_color` reads of a ``data.catalog.Metadata`` (utils sit below data): ``get(key)``."""

    def get(self, key: str, default: Any = None) -> Any: ...

_PALETTE_SIZE = 78
_GOLDEN_RATIO_CONJUGATE = 0.618033988749895
# (saturation, value) of successive rounds through the hue circle
_PALETTE_LEVELS = ((0.75, 0.95), (0.55, 0.8), (0.9, 0.65))
# Lightness offsets (HLS) of successive instances of one class: 0 is the class colour itself.
_SHADE_STEPS = (0.0, -0.16, 0.16, -0.28, 0.28, -0.08, 0.08, -0.22, 0.22)


def _palette_rgb(index: int, hue_offset: float = 0.0) -> Tuple[float, float, float]:
    """The ``index``-th palette colour as RGB floats in 0..1 (same index, same colour)."""
    hue = (index * _GOLDEN_RATIO_CONJUGATE + hue_offset) % 1.0
    saturation, value = _PALETTE_LEVELS[(index // 26) % len(_PALETTE_LEVELS)]
    return colorsys.hsv_to_rgb(hue, saturation, value)


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    return np.asarray([_palette_rgb(i) for i in range(_PALETTE_SIZE)], dtype=np.float32)


def colormap(rgb: bool = False, maximum: int = 255) -> np.ndarray:
    """The palette: a float32 (78, 3) array of colours in 0..``maximum`` (255 or 1), RGB when
    ``rgb`` else BGR (OpenCV's order), as detectron2's ``colormap``."""
    if maximum not in (255, 1):
        raise ValueError(f"colormap: maximum must be 255 or 1, got {maximum}.")
    colors = _palette() * maximum
    return colors if rgb else colors[:, ::-1].copy()


def random_color(rgb: bool = False, maximum: int = 255) -> np.ndarray:
    """One palette colour drawn with numpy's global random state: float32 (3,) in
    0..``maximum``, RGB when ``rgb`` else BGR, as detectron2's ``random_color``."""
    return colormap(rgb=rgb, maximum=maximum)[np.random.randint(0, _PALETTE_SIZE)]


def class_color(metadata: ClassColors, class_id: int, thing: bool = True) -> Color:
    """RGB colour of a contiguous class id: ``thing_colors`` / ``stuff_colors`` of ``metadata``,
    else a fixed palette colour (same id, same colour; stuff hues offset from thing hues)."""
    colors = metadata.get("thing_colors" if thing else "stuff_colors")
    if colors is not None and 0 <= class_id < len(colors):
        return tuple(int(c) for c in colors[class_id])  # type: ignore[return-value]
    return tuple(int(round(255 * c)) for c in _palette_rgb(class_id, 0.0 if thing else 0.5))  # type: ignore


def shade_color(color: Color, index: int) -> Color:
    """The ``index``-th shade of ``color`` (index 0 is ``color``): lighter or darker, same hue."""
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255.0 for c in color))
    if index % len(_SHADE_STEPS):
        lightness = min(max(lightness + _SHADE_STEPS[index % len(_SHADE_STEPS)], 0.15), 0.85)
    return tuple(int(round(255 * c)) for c in colorsys.hls_to_rgb(h, lightness, s))  # type: ignore[return-value]


def scale_color(color: Color, factor: float, towards: int = 0) -> Color:
    """Mix ``color`` with gray level ``towards`` (0 black, 255 white); ``factor`` 1 keeps ``color``."""
    return tuple(int(round(towards + factor * (c - towards))) for c in color)  # type: ignore[return-value]


def to_rgb255(color: Any) -> Color:
    """Any colour users pass to a Visualizer as RGB ints 0..255.

    Accepts what detectron2's Visualizer takes (matplotlib colours: names such as ``"g"``,
    ``"#ff8800"``, RGB(A) floats in 0..1 as returned by ``random_color(rgb=True, maximum=1)``)
    and this package's RGB triples in 0..255 (metadata ``thing_colors``): a triple with a
    component above 1 is read as 0..255, otherwise as 0..1.
    """
    if isinstance(color, str):
        rgb: Sequence[float] = mpl_colors.to_rgb(color)
    else:
        values = np.asarray(color, dtype=np.float64).reshape(-1)
        if values.size not in (3, 4) or not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
            raise ValueError(f"A colour must be a matplotlib colour name or an RGB triple in 0..1 or 0..255, "
                             f"got {color!r}.")
        rgb = values[:3] / 255.0 if values[:3].max() > 1 else values[:3]
    return tuple(int(round(255 * float(c))) for c in rgb)  # type: ignore[return-value]
