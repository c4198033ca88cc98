"""Loading open_clip vision transformers: model names, weights (a tag downloaded once into
a cache, or a local checkpoint file), devices, and a small per-process model cache."""

from __future__ import annotations

import os
import socket
import urllib.parse
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import torch

from .device import resolve_device
from .errors import UserInputError
from .memory import release_freed_memory
from .progress import Progress, as_progress

DEFAULT_MODEL = "ViT-B-16"
DEFAULT_PRETRAINED = "openai"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
# Where downloaded weights go, unless the caller (the plugin settings) says otherwise.
ENV_CACHE_DIR = "SPECIAL_QGIS_CLIP_CACHE"
# Extra open_clip model configs (JSON files or folders, os.pathsep-separated): lets users
# (and the tests' tiny models) bring architectures open_clip does not ship.
ENV_MODEL_CONFIGS = "SPECIAL_QGIS_MODEL_CONFIGS"
_PROBE_TIMEOUT_S = 3.0
_MODEL_CACHE_SIZE = 2


def default_cache_dir() -> str:
    return os.environ.get(ENV_CACHE_DIR) or os.path.join(
        os.path.expanduser("~"), ".cache", "special_qgis", "clip")


@dataclass
class ClipBackbone:
    """An open_clip model ready for dense inference, with what the pipeline needs of it."""

    model: Any  # an open_clip CLIP: its submodules are built at run time
    tokenizer: Any
    model_name: str
    weights: str
    device: torch.device
    mean: tuple
    std: tuple
    patch_size: int
    text_cache: dict = field(default_factory=dict)


_loaded: OrderedDict[tuple, ClipBackbone] = OrderedDict()



def _register_configs() -> None:
    import open_clip

    for path in filter(None, os.environ.get(ENV_MODEL_CONFIGS, "").split(os.pathsep)):
        open_clip.add_model_config(path)


def check_model_name(model_name: str) -> dict:
    """The open_clip config of ``model_name``; errors for unknown or non-ViT models."""
    import open_clip

    _register_configs()
    if model_name not in open_clip.list_models():
        vits = [m for m in open_clip.list_models() if m.startswith("ViT-")][:12]
        raise UserInputError(
            f"MODEL: '{model_name}' is not an open_clip model name. Vision transformers "
            f"include {', '.join(vits)}, … (the full list: open_clip.list_models())."
        )
    cfg = open_clip.get_model_config(model_name) or {}
    vision = cfg.get("vision_cfg", {})
    if ("timm_model_name" in vision or not isinstance(vision.get("layers", 0), int)
            or vision.get("attentional_pool")):
        raise UserInputError(
            f"MODEL: '{model_name}' is not a plain vision transformer (ViT); dense "
            f"segmentation needs an open_clip ViT such as ViT-B-16, ViT-B-32 or ViT-L-14."
        )
    return cfg


def is_checkpoint_path(pretrained: str) -> bool:
    return (os.sep in pretrained or pretrained.lower().endswith(CHECKPOINT_SUFFIXES)
            or os.path.exists(pretrained))


def _report_download(progress: Progress, label: str, done: int, total: int) -> None:
    """Progress of a download in bytes (shown in the Processing log); honours Cancel."""
    if total:
        progress.update(done / total,
                        f"downloading {label}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")
    progress.check()


def _tqdm_reporting(progress: Progress, label: str):
    from tqdm.auto import tqdm

    class _Reporting(tqdm):
        def update(self, n=1):
            done = super().update(n)
            _report_download(progress, label, self.n, self.total)
            return done

    return _Reporting


def _reachable(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def _hf_candidates(hf_hub: str) -> tuple[str, list[str]]:
    """Repository id and file names to try, safetensors first (as open_clip does)."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    model_id, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return model_id, [HF_SAFE_WEIGHTS_NAME, filename]
    if filename.endswith((".bin", ".pth")):
        return model_id, [filename[:-4] + ".safetensors", filename]
    return model_id, [filename]


def _find_cached(cfg: dict, cache_dir: str) -> Optional[str]:
    if cfg.get("hf_hub"):
        from huggingface_hub import hf_hub_download

        model_id, names = _hf_candidates(cfg["hf_hub"])
        for name in names:
            try:
                return hf_hub_download(model_id, name, cache_dir=cache_dir, local_files_only=True)
            except Exception:  # noqa: BLE001 (any miss means: not cached)
                continue
    if cfg.get("url"):
        path = os.path.join(cache_dir, os.path.basename(urllib.parse.urlparse(cfg["url"]).path))
        if os.path.isfile(path):
            return path
    return None


def _download(cfg: dict, label: str, cache_dir: str, progress: Progress) -> str:
    os.makedirs(cache_dir, exist_ok=True)
    if cfg.get("hf_hub"):
        from huggingface_hub import hf_hub_download

        model_id, names = _hf_candidates(cfg["hf_hub"])
        error = None
        for name in names:
            try:
                return hf_hub_download(model_id, name, cache_dir=cache_dir,
                                       tqdm_class=_tqdm_reporting(progress, label))
            except Exception as exc:  # noqa: BLE001 (try the next file name)
                error = exc
        if not cfg.get("url"):
            raise UserInputError(f"PRETRAINED: downloading {label} failed: {error}") from None
    url = cfg["url"]
    target = os.path.join(cache_dir, os.path.basename(urllib.parse.urlparse(url).path))
    partial = target + ".partial"
    try:
        with urllib.request.urlopen(url, timeout=30) as src, open(partial, "wb") as out:
            total = int(src.headers.get("Content-Length") or 0)
            done = 0
            while chunk := src.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                _report_download(progress, label, done, total)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return target


def resolve_weights(model_name: str, pretrained: str, cache_dir: Optional[str] = None,
                    progress: Optional[Progress] = None) -> tuple[str, dict]:
    """A local file holding the weights, and the tag's open_clip config ({} for files).

    A tag is looked up in ``cache_dir`` first and downloaded once if missing; offline, that
    fails within seconds with a message that says how to give a local file instead.
    """
    import open_clip

    progress = as_progress(progress)
    pretrained = (pretrained or "").strip()
    if not pretrained:
        raise UserInputError("PRETRAINED: give an open_clip tag (e.g. 'openai') or the path "
                             "of a checkpoint file (.pt, .bin, .safetensors).")
    if is_checkpoint_path(pretrained):
        path = os.path.expanduser(pretrained)
        if not os.path.isfile(path):
            raise UserInputError(f"PRETRAINED: the checkpoint file '{pretrained}' does not exist.")
        return path, {}

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise UserInputError(
            f"PRETRAINED: '{pretrained}' is neither a checkpoint file nor a weights tag of "
            f"model '{model_name}'. Tags for this model: {', '.join(tags) or 'none'}; or give "
            f"the path of a checkpoint file (.pt, .bin, .safetensors)."
        )
    cache_dir = cache_dir or default_cache_dir()
    label = f"{model_name} weights '{pretrained}'"
    cached = _find_cached(cfg, cache_dir)
    if cached:
        return cached, cfg
    source = (f"https://huggingface.co/{cfg['hf_hub']}" if cfg.get("hf_hub") else cfg["url"])
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if offline or not _reachable(source):
        raise UserInputError(
            f"PRETRAINED: the {label} are not in the cache folder '{cache_dir}' and cannot "
            f"be downloaded from {urllib.parse.urlparse(source).hostname} "
            f"({'HF_HUB_OFFLINE is set' if offline else 'no connection'}). Connect once so "
            f"they can be downloaded, or download the checkpoint elsewhere and give its path as "
            f"PRETRAINED (a .pt, .bin or .safetensors file). The cache folder is set in the "
            f"plugin settings or by the environment variable {ENV_CACHE_DIR}."
        )
    progress.update(0.0, f"downloading {label} into {cache_dir}")
    return _download(cfg, label, cache_dir, progress), cfg


def load(model_name: str = DEFAULT_MODEL, pretrained: str = DEFAULT_PRETRAINED,
         device: str = "auto", cache_dir: Optional[str] = None,
         progress: Optional[Progress] = None) -> ClipBackbone:
    """Load (or reuse) an open_clip ViT in eval mode on ``device``."""
    import open_clip

    progress = as_progress(progress)
    torch_device = resolve_device(device)
    check_model_name(model_name)
    path, tag_cfg = resolve_weights(model_name, pretrained, cache_dir, progress)
    key = (model_name, os.path.realpath(path), os.path.getmtime(path), str(torch_device))
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]

    progress.update(0.0, f"loading {model_name} from {path}")
    try:
        model = open_clip.create_model(
            model_name, pretrained=path, device=torch_device,
            force_quick_gelu=bool(tag_cfg.get("quick_gelu")),
        )
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(
            f"PRETRAINED: the checkpoint '{path}' does not match the architecture of MODEL "
            f"'{model_name}' ({first[:300]}). Choose the MODEL the checkpoint was trained "
            f"with (e.g. ViT-B-32 for a ViT-B-32 RemoteCLIP file)."
        ) from None
    except Exception as exc:  # noqa: BLE001 (unpickling / safetensors header errors)
        raise UserInputError(
            f"PRETRAINED: '{path}' is not a checkpoint open_clip can read "
            f"({type(exc).__name__}: {str(exc)[:200]})."
        ) from None
    model.eval()
    release_freed_memory()  # the checkpoint's tensors were a second copy of the weights
    visual = model.visual
    patch = visual.patch_size
    pre = open_clip.get_model_preprocess_cfg(model)
    backbone = ClipBackbone(
        model=model,
        tokenizer=open_clip.get_tokenizer(model_name),
        model_name=model_name,
        weights=path,
        device=torch_device,
        mean=tuple(tag_cfg.get("mean") or pre.get("mean") or open_clip.OPENAI_DATASET_MEAN),
        std=tuple(tag_cfg.get("std") or pre.get("std") or open_clip.OPENAI_DATASET_STD),
        patch_size=int(patch[0] if isinstance(patch, (tuple, list)) else patch),
    )
    _loaded[key] = backbone
    while len(_loaded) > _MODEL_CACHE_SIZE:
        _loaded.popitem(last=False)
    return backbone
