"""Training-free dense open-vocabulary segmentation with an open_clip ViT (SegEarth-OV
style, docs/method.md §1.3): per-patch class logits for batches of image windows.

Shapes: images (B, 3, H, W) already normalised with the model's mean/std; patch grids
(gh, gw) = ceil(H / patch), ceil(W / patch); embeddings of width E.

open_clip's submodules and parameters are attributes that torch's stubs type as
``Tensor | Module``; the ``cast`` calls below only say which (no effect at run time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812

LOGIT_SCALE = 50.0
CLS_TOKEN_LAMBDA = -0.3


def templates() -> list:
    """The 80 ImageNet prompt templates of CLIP, as open_clip ships them."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return list(OPENAI_IMAGENET_TEMPLATES)


def interpolate_pos_embed(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ViT's learned position embedding (1 + g0*g0, D) to a (gh, gw) grid, bicubic."""
    cls, patches = pos[:1], pos[1:]
    g0 = int(round(math.sqrt(patches.shape[0])))
    if (g0, g0) == tuple(grid):
        return pos
    grid2d = patches.reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    grid2d = F.interpolate(grid2d.float(), size=grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, grid2d.permute(0, 2, 3, 1).reshape(-1, pos.shape[1]).to(pos.dtype)])


def self_self_attention(attn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """softmax(qqᵀ)+softmax(kkᵀ)+softmax(vvᵀ) applied to v, then the output projection.

    ``attn``: the last block's attention (nn.MultiheadAttention or open_clip's Attention,
    both with ``in_proj_weight``); ``x``: (B, L, D) after the block's first LayerNorm.
    """
    b, n, d = x.shape
    heads = cast(int, attn.num_heads)
    q, k, v = F.linear(x, cast(torch.Tensor, attn.in_proj_weight),
                       cast(torch.Tensor, attn.in_proj_bias)).chunk(3, dim=-1)
    q, k, v = (t.reshape(b, n, heads, d // heads).transpose(1, 2) for t in (q, k, v))
    # Each term is ordinary scaled dot-product attention with the query replaced: the fused
    # kernels apply the same 1/sqrt(head_dim) scaling the reference uses.
    out = (F.scaled_dot_product_attention(q, q, v) + F.scaled_dot_product_attention(k, k, v)
           + F.scaled_dot_product_attention(v, v, v))
    return cast(torch.nn.Module, attn.out_proj)(out.transpose(1, 2).reshape(b, n, d))


def patch_and_cls_embeddings(visual: torch.nn.Module, images: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch embeddings (B, gh, gw, E) from the modified last block, and the CLS
    embedding (B, E) of the unmodified model. Neither is normalised."""
    conv1 = cast(torch.nn.Conv2d, visual.conv1)
    x = conv1(images.to(conv1.weight.dtype))
    b, width, gh, gw = x.shape
    x = x.reshape(b, width, gh * gw).permute(0, 2, 1)
    cls = cast(torch.Tensor, visual.class_embedding).to(x.dtype).expand(b, 1, width)
    x = torch.cat([cls, x], dim=1)
    x = x + interpolate_pos_embed(cast(torch.Tensor, visual.positional_embedding),
                                  (gh, gw)).to(x.dtype)
    x = cast(torch.nn.Module, visual.ln_pre)(x)

    blocks = cast(torch.nn.ModuleList, cast(torch.nn.Module, visual.transformer).resblocks)
    batch_first = getattr(visual.transformer, "batch_first", True)
    if not batch_first:
        x = x.transpose(0, 1)
    for block in blocks[:-1]:
        x = block(x)
    if not batch_first:
        x = x.transpose(0, 1)
    last = blocks[-1]
    normed = cast(torch.nn.Module, last.ln_1)(x)

    # Dense path: the last block's attention alone, with no residual and no MLP.
    dense = self_self_attention(cast(torch.nn.Module, last.attn), normed)
    patches = cast(torch.nn.Module, visual.ln_post)(dense[:, 1:]) @ visual.proj
    cls_embed = (cast(torch.nn.Module, visual.ln_post)(_unmodified_cls(last, x, normed))
                 @ visual.proj)
    return patches.reshape(b, gh, gw, -1), cls_embed


def _unmodified_cls(block: torch.nn.Module, x: torch.Tensor, normed: torch.Tensor
                    ) -> torch.Tensor:
    """The CLS token (B, D) after the ordinary last block. Only the CLS query is needed,
    which saves almost the whole block's cost with nn.MultiheadAttention."""
    if isinstance(block.attn, torch.nn.MultiheadAttention) and block.attn.batch_first:
        attn = block.attn(normed[:, :1], normed, normed, need_weights=False)[0]
        cls = x[:, :1] + cast(torch.nn.Module, block.ls_1)(attn)
        cls = cls + cast(torch.nn.Module, block.ls_2)(
            cast(torch.nn.Module, block.mlp)(cast(torch.nn.Module, block.ln_2)(cls)))
        return cls[:, 0]
    return block(x)[:, 0]


class TextClassifier:
    """Class-name embeddings: each name in every template, L2-normalised, averaged and
    renormalised; a class's logit is the max over its synonyms."""

    def __init__(self, model, tokenizer, classes: Sequence[Sequence[str]], device,
                 prompt_templates: Sequence | None = None, batch_size: int = 256) -> None:
        prompt_templates = list(prompt_templates or templates())
        names = [name for synonyms in classes for name in synonyms]
        self.class_of = torch.tensor([c for c, syn in enumerate(classes) for _ in syn],
                                     device=device)
        self.num_classes = len(classes)
        embeddings = []
        with torch.inference_mode():
            for name in names:
                prompts = [t(name) for t in prompt_templates]
                parts = []
                for i in range(0, len(prompts), batch_size):
                    tokens = tokenizer(prompts[i:i + batch_size]).to(device)
                    parts.append(F.normalize(model.encode_text(tokens).float(), dim=-1))
                embeddings.append(F.normalize(torch.cat(parts).mean(dim=0), dim=-1))
        self.embeddings = torch.stack(embeddings)  # (names, E)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """LOGIT_SCALE × cosine similarity; features (..., E) → (..., C), max over synonyms."""
        sims = F.normalize(features.float(), dim=-1) @ self.embeddings.T * LOGIT_SCALE
        out = sims.new_full(sims.shape[:-1] + (self.num_classes,), float("-inf"))
        index = self.class_of.expand(sims.shape)
        return out.scatter_reduce(-1, index, sims, reduce="amax")


def window_logits(visual: torch.nn.Module, classifier: TextClassifier, images: torch.Tensor,
                  patch_size: int, cls_lambda: float = CLS_TOKEN_LAMBDA) -> torch.Tensor:
    """Class logits (B, C, H, W) for windows (B, 3, H, W), CLS-corrected, before softmax.

    Windows whose sides are not multiples of the patch size are padded (edge values) for
    the ViT; the patch logits are upsampled bilinearly to the padded size and cropped.
    """
    _, _, h, w = images.shape
    ph, pw = math.ceil(h / patch_size) * patch_size, math.ceil(w / patch_size) * patch_size
    if (ph, pw) != (h, w):
        images = F.pad(images, (0, pw - w, 0, ph - h), mode="replicate")
    patches, cls_embed = patch_and_cls_embeddings(visual, images)
    logits = classifier.logits(patches)  # (B, gh, gw, C)
    if cls_lambda:
        logits = logits + cls_lambda * classifier.logits(cls_embed)[:, None, None, :]
    logits = logits.permute(0, 3, 1, 2)
    logits = F.interpolate(logits, size=(ph, pw), mode="bilinear", align_corners=False)
    return logits[:, :, :h, :w]
