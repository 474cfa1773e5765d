"""Swin Transformer backbone (Liu et al., ICCV 2021) as Mask2Former uses it: ``D2SwinTransformer``,
with the module and parameter names of upstream's, so that official Swin and Mask2Former checkpoints
load as they are. Sizes T/S/B/L are ``MODEL.SWIN.*`` settings (EMBED_DIM, DEPTHS, NUM_HEADS,
WINDOW_SIZE).

Layout: images (N, 3, H, W) -> 4x4 patches (``patch_embed``) -> 4 stages (``layers.i``) of
shifted-window attention blocks, each stage but the last ending in a 2x2 patch merging that halves
the resolution and doubles the channels -> one LayerNorm per output (``norm0``..``norm3``), as
``res2``..``res5`` at strides 4..32. Inputs of any size are padded inside (patches, windows, merging);
outputs have ``ceil(H / stride) x ceil(W / stride)`` pixels.

The official ImageNet Swin weights (Swin's own names at the top level) load through the library's
``Checkpointer`` as ``MODEL.WEIGHTS``: importing this module registers their layout
(:func:`convert_swin_imagenet_state_dict`). Point it at the released ``swin_*_patch4_window*.pth``
(``torch.save`` of ``{"model": ...}``), or at a ``.pkl`` of numpy arrays; upstream's converted ``.pkl``
pickles torch tensors, which the restricted unpickler refuses (it runs no code from a file).
"""
from __future__ import annotations

from typing import Any, Collection, Dict, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import checkpoint
from torchvision.ops import StochasticDepth

from seg_research.checkpoint.checkpointer import FOREIGN_LAYOUTS, ForeignLayout
from seg_research.config import configurable
from seg_research.layers import ShapeSpec
from seg_research.modeling import BACKBONE_REGISTRY, Backbone

__all__ = ["D2SwinTransformer", "convert_swin_imagenet_state_dict"]

# Additive attention mask between tokens of different regions of a shifted window (upstream's value:
# exp(-100) is 0 in float32 after the softmax, and equal outputs need the same constant).
_MASKED = -100.0


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``window_size`` -> (B * nW, window_size**2, C), windows in
    row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, window_size**2, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window_size, w // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned bias per relative position
    (a table of (2 Wh - 1)(2 Ww - 1) entries per head, indexed by ``relative_position_index``)."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = (window_size, window_size)  # (Wh, Ww), upstream's attribute
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # Token i = (yi, xi), token j = (yj, xj) of a window: their offset (yi - yj, xi - xj), each in
        # [-(w - 1), w - 1], numbered row-major in the (2w - 1) x (2w - 1) table. A persistent buffer
        # because upstream's is: checkpoints hold it.
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
        coords = coords.flatten(1)  # (2, w * w)
        offsets = (coords[:, :, None] - coords[:, None, :]) + (window_size - 1)  # (2, w*w, w*w), >= 0
        self.register_buffer("relative_position_index", offsets[0] * (2 * window_size - 1) + offsets[1])
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x: (B * nW, N, C) tokens of the windows of B images, N = Wh * Ww.
            mask: (nW, N, N) additive mask of the shifted windows (0 or -100), or None.

        Returns:
            (B * nW, N, C).
        """
        windows, n, c = x.shape
        head_dim = c // self.num_heads
        q, k, v = self.qkv(x).view(windows, n, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        # Explicit attention: on the CPU, for these short sequences (49 tokens) with an additive mask,
        # it is 10-25% faster than scaled_dot_product_attention (forward; equal in forward + backward).
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B * nW, heads, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            # Windows are image-major: view them as (B, nW) so that each window gets its own mask.
            num_windows = mask.shape[0]
            attn = (attn.view(-1, num_windows, self.num_heads, n, n) + mask[:, None]).view(-1, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(windows, n, c)
        return self.proj_drop(self.proj(out))


class SwinTransformerBlock(nn.Module):
    """Pre-norm (shifted) window attention and MLP, each with a residual connection and stochastic
    depth. ``shift_size`` > 0 rolls the feature map by that many pixels up-left before partitioning."""

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift_size: int = 0, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"SwinTransformerBlock: shift_size {shift_size} must be in [0, window_size={window_size}).")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        # Row mode drops each sample's whole residual branch: timm's DropPath.
        self.drop_path = StochasticDepth(drop_path, "row") if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, h: int, w: int, attn_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            x: (B, H * W, C) tokens, row-major.
            h, w: H and W.
            attn_mask: the stage's (nW, N, N) shifted-window mask (used when shift_size > 0).

        Returns:
            (B, H * W, C).
        """
        b, length, c = x.shape
        if length != h * w:
            raise ValueError(f"SwinTransformerBlock: {length} tokens for a {h}x{w} feature map.")
        ws = self.window_size
        y = self.norm1(x).view(b, h, w, c)
        pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        y = self.attn(window_partition(y, ws), mask=attn_mask if self.shift_size > 0 else None)
        y = window_reverse(y, ws, hp, wp)
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        y = y[:, :h, :w].reshape(b, h * w, c)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens concatenated (4C, after padding odd sizes), normalized and projected to
    2C: (B, H * W, C) -> (B, ceil(H/2) * ceil(W/2), 2C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
        # Channel order (upstream's, which the reduction weights assume): (even row, even col),
        # (odd, even), (even, odd), (odd, odd).
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks alternating regular and shifted windows (shift ``window_size // 2``),
    then an optional :class:`PatchMerging`."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop: float, attn_drop: float, drop_path: Sequence[float],
                 downsample: bool, use_checkpoint: bool = False) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else self.shift_size, mlp_ratio,
                                 qkv_bias, qk_scale, drop, attn_drop, drop_path[i])
            for i in range(depth)
        ])
        self.downsample = PatchMerging(dim) if downsample else None

    def shifted_window_mask(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(nW, N, N) additive mask for the shifted windows of an H x W map (padded to windows): after
        the cyclic shift, a window at the bottom or right border holds tokens of up to 3 x 3 regions
        that were not neighbours; attention between different regions is masked."""
        ws, shift = self.window_size, self.shift_size
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        # Region labels along each axis: [0, hp - ws) -> 0, [hp - ws, hp - shift) -> 1, [hp - shift, hp) -> 2.
        rows = torch.zeros(hp, dtype=torch.long, device=device)
        rows[hp - ws:], rows[hp - shift:] = 1, 2
        cols = torch.zeros(wp, dtype=torch.long, device=device)
        cols[wp - ws:], cols[wp - shift:] = 1, 2
        regions = (rows[:, None] * 3 + cols[None, :])[None, :, :, None]  # (1, hp, wp, 1)
        regions = window_partition(regions, ws)[..., 0]  # (nW, N)
        different = regions[:, None, :] != regions[:, :, None]
        return torch.zeros(different.shape, device=device).masked_fill(different, _MASKED)

    def forward(self, x: torch.Tensor, h: int, w: int) -> Tuple[torch.Tensor, int, int, torch.Tensor, int, int]:
        """(B, H * W, C) -> (stage output, H, W, input of the next stage, its H, its W)."""
        mask = self.shifted_window_mask(h, w, x.device)
        for block in self.blocks:
            if self.use_checkpoint and x.requires_grad:
                x = checkpoint.checkpoint(block, x, h, w, mask, use_reentrant=False)
            else:
                x = block(x, h, w, mask)
        if self.downsample is None:
            return x, h, w, x, h, w
        return x, h, w, self.downsample(x, h, w), (h + 1) // 2, (w + 1) // 2


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` patches (the image padded bottom/right to a multiple) projected by
    a strided conv to ``embed_dim`` channels, optionally LayerNorm-ed: (B, 3, H, W) -> (B, C, H/p, W/p)."""

    def __init__(self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96, norm: bool = True) -> None:
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size[0]
        h, w = x.shape[-2:]
        x = self.proj(F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p)))
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


@BACKBONE_REGISTRY.register()
class D2SwinTransformer(Backbone):
    """Swin Transformer as a backbone: outputs ``res2``..``res5`` (strides 4, 8, 16, 32; channels
    C, 2C, 4C, 8C for ``embed_dim`` C), each normalized by its own LayerNorm (``norm0``..``norm3``).

    Initialization: linear weights truncated normal (std 0.02), biases 0, LayerNorms 1 / 0, relative
    position biases and the absolute position embedding truncated normal (std 0.02), as the Swin
    authors intended (upstream defines ``init_weights`` for the linears but never calls it, leaving
    PyTorch's default there; official checkpoints overwrite either).
    """

    @configurable
    def __init__(
        self,
        *,
        pretrain_img_size: int = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        ape: bool = False,
        patch_norm: bool = True,
        out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
        use_checkpoint: bool = False,
    ) -> None:
        """
        Args:
            pretrain_img_size: image size of pre-training; sets the absolute position embedding's
                size (``ape``), which is resized bicubically to the input.
            patch_size: side of the square patches (the stride of ``res2``... is 4 for 4).
            in_chans: input channels.
            embed_dim: C, channels of the first stage.
            depths: blocks per stage (4 stages).
            num_heads: attention heads per stage.
            window_size: side of the attention windows, in tokens.
            mlp_ratio: MLP hidden width / channels.
            qkv_bias: learn biases of q, k, v.
            qk_scale: attention scale; None: head_dim ** -0.5.
            drop_rate: dropout after the patch embedding, in the MLPs and after attention projections.
            attn_drop_rate: dropout of the attention weights.
            drop_path_rate: stochastic depth of the last block; it grows linearly from 0 over all blocks.
            ape: add a learned absolute position embedding to the patches.
            patch_norm: LayerNorm after the patch embedding.
            out_features: which of ``res2``..``res5`` to return.
            use_checkpoint: recompute each block in the backward pass (activation checkpointing).
        """
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError(
                f"D2SwinTransformer has 4 stages: MODEL.SWIN.DEPTHS {list(depths)} and NUM_HEADS {list(num_heads)} "
                "must each have 4 entries."
            )
        names = [f"res{i + 2}" for i in range(4)]
        unknown = [f for f in out_features if f not in names]
        if unknown:
            raise ValueError(f"MODEL.SWIN.OUT_FEATURES: {unknown} are not Swin outputs; choose from {names}.")
        self.num_layers = len(depths)
        self.embed_dim = embed_dim
        self.ape = ape
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, norm=patch_norm)
        if ape:
            side = pretrain_img_size // patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, side, side))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        starts = [sum(depths[:i]) for i in range(self.num_layers + 1)]
        self.layers = nn.ModuleList([
            BasicLayer(embed_dim * 2 ** i, depths[i], num_heads[i], window_size, mlp_ratio, qkv_bias, qk_scale,
                       drop_rate, attn_drop_rate, rates[starts[i]:starts[i + 1]],
                       downsample=i < self.num_layers - 1, use_checkpoint=use_checkpoint)
            for i in range(self.num_layers)
        ])
        self.num_features = [embed_dim * 2 ** i for i in range(self.num_layers)]
        # Every stage has its output norm (upstream builds all four whatever the outputs).
        for i, channels in enumerate(self.num_features):
            self.add_module(f"norm{i}", nn.LayerNorm(channels))
        self._out_features = list(out_features)
        self._out_feature_strides = {name: patch_size * 2 ** i for i, name in enumerate(names)}
        self._out_feature_channels = dict(zip(names, self.num_features, strict=True))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_config(cls, cfg, input_shape: Optional[ShapeSpec] = None) -> Dict[str, Any]:
        swin = cfg.MODEL.SWIN
        return {
            "pretrain_img_size": swin.PRETRAIN_IMG_SIZE,
            "patch_size": swin.PATCH_SIZE,
            "in_chans": input_shape.channels if input_shape is not None and input_shape.channels else 3,
            "embed_dim": swin.EMBED_DIM,
            "depths": list(swin.DEPTHS),
            "num_heads": list(swin.NUM_HEADS),
            "window_size": swin.WINDOW_SIZE,
            "mlp_ratio": swin.MLP_RATIO,
            "qkv_bias": swin.QKV_BIAS,
            "qk_scale": swin.QK_SCALE,
            "drop_rate": swin.DROP_RATE,
            "attn_drop_rate": swin.ATTN_DROP_RATE,
            "drop_path_rate": swin.DROP_PATH_RATE,
            "ape": swin.APE,
            "patch_norm": swin.PATCH_NORM,
            "out_features": list(swin.OUT_FEATURES),
            "use_checkpoint": swin.USE_CHECKPOINT,
        }

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            x: (N, C, H, W) normalized images (any H, W; padded inside).

        Returns:
            ``res2``..``res5`` of ``out_features``: (N, C_i, ceil(H / s_i), ceil(W / s_i)).
        """
        if x.dim() != 4:
            raise ValueError(f"D2SwinTransformer takes (N, C, H, W) images, got a tensor of shape {tuple(x.shape)}.")
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        if self.ape:
            x = x + F.interpolate(self.absolute_pos_embed, size=(h, w), mode="bicubic")
        x = self.pos_drop(x.flatten(2).transpose(1, 2))
        outputs: Dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            stage, sh, sw, x, h, w = layer(x, h, w)
            name = f"res{i + 2}"
            if name in self._out_features:
                out = getattr(self, f"norm{i}")(stage)
                outputs[name] = out.view(-1, sh, sw, self.num_features[i]).permute(0, 3, 1, 2).contiguous()
        return outputs

    @property
    def size_divisibility(self) -> int:
        return 32


def _is_swin_imagenet_state_dict(keys: Collection[str]) -> bool:
    """A Swin classification state_dict (the official ImageNet weights, as upstream's
    ``convert-pretrained-swin-model-to-d2.py`` wraps them): Swin's names at the top level."""
    return "patch_embed.proj.weight" in keys and "layers.0.blocks.0.attn.qkv.weight" in keys


def convert_swin_imagenet_state_dict(state_dict: Dict[str, Any], model: nn.Module) -> Dict[str, Any]:
    """Place an ImageNet Swin's weights under the model's one Swin (e.g. ``backbone.``), as
    detectron2's name matching does for upstream: the classifier (``head.*``), its final ``norm.*``
    and the fixed-size ``attn_mask`` buffers of the classification model are left out, so the
    output norms ``norm0``..``norm3`` keep their initialization, as in upstream's training.

    Raises:
        ValueError: when the model does not hold exactly one Swin.
    """
    suffix = "patch_embed.proj.weight"
    prefixes = [k[: -len(suffix)] for k in model.state_dict() if k.endswith(suffix)]
    if len(prefixes) != 1:
        raise ValueError(f"the model has {len(prefixes)} Swin backbones (parameters '*{suffix}'); an ImageNet Swin "
                         "checkpoint loads into a model with exactly one.")
    return {prefixes[0] + k: v for k, v in state_dict.items()
            if not (k.startswith("head.") or k in ("norm.weight", "norm.bias") or k.endswith(".attn_mask"))}


FOREIGN_LAYOUTS.append(
    ForeignLayout("Swin Transformer ImageNet classification", _is_swin_imagenet_state_dict,
                  convert_swin_imagenet_state_dict))
