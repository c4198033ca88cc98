"""The guided filter that makes the class maps follow the image's edges (box means, the
filter on one block, and the strip-wise whole-image filter)."""

from __future__ import annotations

from .options import GUIDED_EPS


def _box_mean(x, r: int):
    """Mean over a (2r+1)² box clipped at the borders; x (..., H, W) float32. The running
    sums are float64 so that long rows keep their precision."""
    import torch

    out_dtype = x.dtype
    for dim in (-1, -2):
        n = x.shape[dim]
        c = torch.cumsum(x, dim=dim, dtype=torch.float64)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
        idx = torch.arange(n, device=x.device)
        hi = (idx + r + 1).clamp(max=n)
        lo = (idx - r).clamp(min=0)
        shape = [1] * x.dim()
        shape[dim] = n
        x = c.index_select(dim, hi)
        x -= c.index_select(dim, lo)
        del c
        x /= (hi - lo).reshape(shape)
    return x.to(out_dtype)


def guided_filter(guide, src, radius: int, eps: float = GUIDED_EPS, strip: int = 512):
    """He et al.'s guided filter with a colour guide. guide (3, H, W) in [0, 1],
    src (C, H, W) float32, filtered in place (and returned) following the guide's edges.

    Runs in strips of ``strip`` rows with a halo of 2·radius rows (the reach of the two
    nested box filters), which gives exactly the whole-image result in bounded memory.
    """
    height = guide.shape[1]
    halo = 2 * radius
    if height <= strip + 2 * halo:
        return _guided_block(guide, src, radius, eps)
    originals = None  # the halo rows above the strip, as they were before filtering
    for y0 in range(0, height, strip):
        y1 = min(y0 + strip, height)
        a, b = max(0, y0 - halo), min(height, y1 + halo)
        block = src[:, a:b].clone()
        if originals is not None:
            block[:, :y0 - a] = originals
        # The next strip's halo, taken from this unfiltered block (src rows above y0 are
        # already filtered).
        originals = block[:, max(0, y1 - halo) - a:y1 - a].clone()
        _guided_block(guide[:, a:b], block, radius, eps)
        src[:, y0:y1] = block[:, y0 - a:y1 - a]
    return src


def _guided_block(guide, src, radius: int, eps: float):
    """The guided filter on one block, one class map at a time, with the 3×3 covariance
    inverted in closed form: about 20 extra maps of the block whatever C is."""
    g = guide.float()
    mean = [_box_mean(g[i], radius) for i in range(3)]
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    a, b, c, d, e, f = (_box_mean(g[i] * g[j], radius) - mean[i] * mean[j] for i, j in pairs)
    a, d, f = a + eps, d + eps, f + eps
    # Inverse of the symmetric [[a, b, c], [b, d, e], [c, e, f]] by cofactors.
    inv = [d * f - e * e, c * e - b * f, b * e - c * d, a * f - c * c, b * c - a * e,
           a * d - b * b]
    det = a * inv[0] + b * inv[1] + c * inv[2]
    del a, b, c, d, e, f
    inv = [m / det for m in inv]
    del det
    rows = ((inv[0], inv[1], inv[2]), (inv[1], inv[3], inv[4]), (inv[2], inv[4], inv[5]))
    for k in range(src.shape[0]):                                    # one class at a time
        p = src[k]
        mean_p = _box_mean(p, radius)
        cov = [_box_mean(g[i] * p, radius) - mean[i] * mean_p for i in range(3)]
        coef = [r0 * cov[0] + r1 * cov[1] + r2 * cov[2] for r0, r1, r2 in rows]
        offset = mean_p - sum(coef[i] * mean[i] for i in range(3))
        src[k] = sum(_box_mean(coef[i], radius) * g[i] for i in range(3)) + _box_mean(
            offset, radius)
    return src
