"""Stage I's mathematics against independent computations (tiny real ViT, random weights)."""

import math

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F  # noqa: N812

from special_qgis.core import classes, dense_clip, pseudolabel

from rasters import make_cube, write_gtiff


def _reference_self_self(attn, x):
    """softmax(qqᵀ/√d)+softmax(kkᵀ/√d)+softmax(vvᵀ/√d) applied to v, head by head, loops."""
    b, n, d = x.shape
    h = attn.num_heads
    hd = d // h
    w, bias = attn.in_proj_weight, attn.in_proj_bias
    q = x @ w[:d].T + bias[:d]
    k = x @ w[d:2 * d].T + bias[d:2 * d]
    v = x @ w[2 * d:].T + bias[2 * d:]
    out = torch.zeros(b, n, d)
    for i in range(b):
        for head in range(h):
            sl = slice(head * hd, (head + 1) * hd)
            qh, kh, vh = q[i, :, sl], k[i, :, sl], v[i, :, sl]
            total = sum(torch.softmax(m @ m.T / math.sqrt(hd), dim=-1) for m in (qh, kh, vh))
            out[i, :, sl] = total @ vh
    return out @ attn.out_proj.weight.T + attn.out_proj.bias


def test_self_self_attention_matches_reference():
    torch.manual_seed(1)
    attn = torch.nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(2, 7, 64)
    with torch.no_grad():
        torch.testing.assert_close(dense_clip.self_self_attention(attn, x),
                                   _reference_self_self(attn, x), rtol=1e-4, atol=1e-5)


def test_patch_and_cls_embeddings(tiny_clip):
    visual = tiny_clip.model.visual
    images = torch.randn(2, 3, 32, 32)
    captured = {}

    def keep_input(module, args, output):
        captured["x"] = args[0]  # returns None: the block's output is left alone

    hook = visual.transformer.resblocks[-1].register_forward_hook(keep_input)
    with torch.no_grad():
        expected_cls = tiny_clip.model.encode_image(images)  # the unmodified model
        hook.remove()
        patches, cls_embed = dense_clip.patch_and_cls_embeddings(visual, images)
        last = visual.transformer.resblocks[-1]
        dense = _reference_self_self(last.attn, last.ln_1(captured["x"]))
        expected_patches = visual.ln_post(dense[:, 1:]) @ visual.proj
    torch.testing.assert_close(cls_embed, expected_cls, rtol=1e-4, atol=1e-5)
    assert patches.shape == (2, 4, 4, 32)
    torch.testing.assert_close(patches.reshape(2, 16, 32), expected_patches, rtol=1e-4,
                               atol=1e-5)


def test_position_embedding_interpolation(tiny_clip):
    pos = tiny_clip.model.visual.positional_embedding.detach()
    assert dense_clip.interpolate_pos_embed(pos, (4, 4)) is pos  # native grid: untouched
    bigger = dense_clip.interpolate_pos_embed(pos, (6, 9))
    assert bigger.shape == (1 + 54, pos.shape[1])
    torch.testing.assert_close(bigger[0], pos[0])              # CLS kept
    with torch.no_grad():  # other window sizes run, including non-multiples of the patch
        patches, _ = dense_clip.patch_and_cls_embeddings(tiny_clip.model.visual,
                                                         torch.randn(1, 3, 48, 72))
    assert patches.shape == (1, 6, 9, 32)


def _encode(model, tokenizer, prompts):
    with torch.no_grad():
        return F.normalize(model.encode_text(tokenizer(prompts)).float(), dim=-1)


def test_text_templates_and_synonym_max(tiny_clip):
    import open_clip

    model, tok = tiny_clip.model, open_clip.get_tokenizer(tiny_clip.name)
    templates = [lambda c: f"a photo of {c}.", lambda c: f"an aerial image of {c}."]
    clf = dense_clip.TextClassifier(model, tok, [["lake", "river"], ["forest"]], "cpu",
                                    prompt_templates=templates)

    def class_embedding(name):
        e = _encode(model, tok, [t(name) for t in templates]).mean(0)
        return e / e.norm()

    emb = {n: class_embedding(n) for n in ("lake", "river", "forest")}
    feats = torch.randn(5, 32)
    fn = F.normalize(feats, dim=-1)
    expected = torch.stack([
        torch.maximum(fn @ emb["lake"], fn @ emb["river"]) * 50,
        fn @ emb["forest"] * 50,
    ], dim=-1)
    torch.testing.assert_close(clf.logits(feats), expected, rtol=1e-5, atol=1e-4)
    assert len(dense_clip.templates()) == 80


def test_cls_correction(tiny_clip):
    import open_clip

    clf = dense_clip.TextClassifier(tiny_clip.model, open_clip.get_tokenizer(tiny_clip.name),
                                    [["a"], ["b"], ["c"]], "cpu",
                                    prompt_templates=[lambda c: c])
    images = torch.randn(2, 3, 40, 40)
    visual = tiny_clip.model.visual
    with torch.no_grad():
        plain = dense_clip.window_logits(visual, clf, images, 8, cls_lambda=0.0)
        corrected = dense_clip.window_logits(visual, clf, images, 8)
        _, cls_embed = dense_clip.patch_and_cls_embeddings(visual, images)
        cls_logits = clf.logits(cls_embed)
    assert corrected.shape == (2, 3, 40, 40)
    torch.testing.assert_close(corrected - plain,
                               (-0.3 * cls_logits)[:, :, None, None].expand_as(plain),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length,window,stride", [(224, 224, 112), (500, 224, 112),
                                                  (37, 16, 5), (16, 16, 16), (300, 64, 64)])
def test_window_starts_cover_every_pixel(length, window, stride):
    starts = pseudolabel.window_starts(length, window, stride)
    covered = np.zeros(length, int)
    for s in starts:
        covered[s:s + window] += 1
    assert covered.min() >= 1 and starts[-1] + window == length and starts[0] == 0
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:], strict=False))


def test_guided_filter_matches_naive():
    def naive(guide, p, r, eps):
        _, h, w = guide.shape

        def box(x):
            out = np.zeros_like(x)
            for y in range(h):
                for xx in range(w):
                    out[..., y, xx] = x[..., max(0, y - r):y + r + 1,
                                        max(0, xx - r):xx + r + 1].mean(axis=(-1, -2))
            return out

        mean_i, mean_p = box(guide), box(p)
        cov = np.stack([np.stack([box(guide[i] * guide[j]) for j in range(3)])
                        for i in range(3)]) - mean_i[:, None] * mean_i[None]
        cov_ip = np.stack([box(guide[i] * p) for i in range(3)]) - mean_i * mean_p
        a = np.zeros((3, h, w))
        for y in range(h):
            for x in range(w):
                a[:, y, x] = np.linalg.solve(cov[:, :, y, x] + eps * np.eye(3), cov_ip[:, y, x])
        b = mean_p - (a * mean_i).sum(0)
        return (box(a) * guide).sum(0) + box(b)

    rng = np.random.default_rng(0)
    guide, src = rng.random((3, 12, 15)), rng.random((2, 12, 15)) * 10
    expected = np.stack([naive(guide, src[k], 2, 0.01) for k in range(2)])
    got = pseudolabel.guided_filter(torch.tensor(guide, dtype=torch.float32),
                                    torch.tensor(src, dtype=torch.float32), 2, 0.01)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def test_bvsb():
    p = np.random.default_rng(1).dirichlet(np.ones(5), size=(6, 7)).transpose(2, 0, 1)
    s = np.sort(p, axis=0)
    np.testing.assert_allclose(classes.bvsb(p), s[-1] - s[-2])
    assert (classes.bvsb(p) >= 0).all() and (classes.bvsb(p) <= 1).all()


# --- the scene-level engine with the model replaced by a known function ------------

def _normalised(cube):
    """The stage's input normalisation, written out: 0.1/99.9 % quantiles → [0, 1]."""
    flat = cube.reshape(3, -1).astype(np.float64)
    lo = np.quantile(flat, 0.001, axis=1)[:, None, None]
    hi = np.quantile(flat, 0.999, axis=1)[:, None, None]
    return np.clip((cube - lo) / (hi - lo), 0, 1)


@pytest.fixture
def identity_model(monkeypatch):
    """window_logits returns the normalised RGB window itself (3 'classes'), and the guided
    filter is the identity: the pipeline's geometry can then be checked exactly."""
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    monkeypatch.setattr(dense_clip, "window_logits",
                        lambda visual, clf, crops, patch: 4.0 * (crops * std + mean))
    monkeypatch.setattr(pseudolabel.filters, "guided_filter", lambda guide, x, radius: x)


def _smooth_rgb(rows, cols, seed=0):
    y, x = np.mgrid[0:rows, 0:cols] / 40.0
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 6, size=3)
    return np.stack([1000 + 400 * np.sin(x * (k + 1) * 0.7 + y * 0.5 + phases[k])
                     for k in range(3)]).astype("float32")


def _run_probs(tmp_path, src, tiny_clip, scales, tag, tile=1024, window=16, stride=8):
    out = tmp_path / f"p-{tag}.tif"
    pseudolabel.run(src, [["a"], ["b"], ["c"]], str(tmp_path / f"l-{tag}.tif"),
                    str(tmp_path / f"c-{tag}.tif"), str(out), model_name=tiny_clip.name,
                    pretrained=tiny_clip.checkpoint, scales=scales, window=window,
                    stride=stride, tile=tile)
    with rasterio.open(out) as ds:
        return ds.read()


def test_overlapping_windows_average_exactly(tmp_path, tiny_clip, identity_model):
    cube = make_cube(bands=3, rows=37, cols=45, seed=3)
    src = write_gtiff(str(tmp_path / "rgb.tif"), cube)
    got = _run_probs(tmp_path, src, tiny_clip, "1", "s1", window=16, stride=5)
    logits = 4.0 * _normalised(cube)
    expected = np.exp(logits) / np.exp(logits).sum(0)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_resolution_scaling_known_map(tmp_path, tiny_clip, identity_model):
    cube = _smooth_rgb(48, 64)
    src = write_gtiff(str(tmp_path / "rgb.tif"), cube)
    logits = 4.0 * _normalised(cube)
    expected = np.exp(logits) / np.exp(logits).sum(0)
    p1 = _run_probs(tmp_path, src, tiny_clip, "1", "s1")
    p2 = _run_probs(tmp_path, src, tiny_clip, "2", "s2")
    both = _run_probs(tmp_path, src, tiny_clip, "1,2", "s12")
    np.testing.assert_allclose(p1, expected, atol=2e-5)
    # Zoomed ×2 (cubic), segmented, zoomed back: a smooth map comes back as it was.
    inner = (slice(None), slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(p2[inner], expected[inner], atol=5e-3)
    np.testing.assert_allclose(both, (p1 + p2) / 2, atol=1e-6)   # fusion = the mean


@pytest.mark.parametrize("scales", ["1,2", "0.5,1.5"])
def test_tiled_equals_whole_scene(tmp_path, tiny_clip, scales):
    cube = make_cube(bands=3, rows=70, cols=90, seed=4)
    src = write_gtiff(str(tmp_path / "rgb.tif"), cube)
    whole = _run_probs(tmp_path, src, tiny_clip, scales, "whole", tile=1024, window=24,
                       stride=12)
    tiled = _run_probs(tmp_path, src, tiny_clip, scales, "tiled", tile=32, window=24,
                       stride=12)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_guided_filter_in_strips_equals_whole():
    rng = np.random.default_rng(5)
    guide = torch.tensor(rng.random((3, 61, 23)), dtype=torch.float32)
    src = torch.tensor(rng.random((4, 61, 23)) * 20, dtype=torch.float32)
    whole = pseudolabel.guided_filter(guide, src.clone(), 3, strip=1000)
    for strip in (5, 8, 13):
        strips = pseudolabel.guided_filter(guide, src.clone(), 3, strip=strip)
        torch.testing.assert_close(strips, whole, rtol=1e-5, atol=1e-4)
