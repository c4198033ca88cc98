"""What to install: the requirement lines, their import names, which are missing, the
download estimate, and the versions the running Python already has."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Optional

from ..dependencies import _REQUIREMENTS, PACKAGES

# Packages QGIS's own compiled modules (GDAL's, QGIS's) are built against: pinned to the
# running version and never left in the private folder.
KEEP_FROM_QGIS = ("numpy",)

# Approximate download of each package with the dependencies pip brings along for it
# (MB, PyPI wheels). Measured on Linux x86-64 with CPython 3.11 for these pins: torch
# 2.14.1 555 MB + NVIDIA's CUDA libraries (nvidia-*, cuda-*) and triton about 2450 MB;
# the whole set 3.1 GB to download, 6.1 GB on disk. CPU-only torch, Windows and macOS from
# the sizes of their torch wheels. An estimate: it changes with the platform, the versions
# and what QGIS's Python already has.
DOWNLOAD_MB: dict[str, int | dict[str, int]] = {
    # Linux: PyPI's torch brings NVIDIA's CUDA libraries; the CPU-only build from
    # download.pytorch.org does not. Windows' and macOS' PyPI torch is CPU-only.
    "torch": {"linux": 3020, "linux-cpu": 200, "win32": 250, "darwin": 90},
    "torchvision": 8,
    "open-clip-torch": 15,  # with timm, huggingface_hub, hf-xet, ftfy, regex, safetensors
    "rasterio": 37,  # with the GDAL and PROJ it bundles
    "affine": 1,
    "scikit-learn": 50,  # with scipy, joblib, threadpoolctl
    "tqdm": 1,
}
DISK_FACTOR = 1.9  # installed size / download (6.1 GB / 3.1 GB for the measured set)


def requirement_name(line: str) -> str:
    """The canonical project name of a requirement line (``Open_Clip.torch==3`` →
    ``open-clip-torch``)."""
    name = re.split(r"[\s<>=!~;\[@(]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(path: str = _REQUIREMENTS) -> list[str]:
    """The requirement lines of a requirements.txt (comments and blank lines left out)."""
    with open(path, encoding="utf-8") as fh:
        lines = [line.split("#", 1)[0].strip() for line in fh]
    return [line for line in lines if line]


_MODULE_OF = {requirement_name(pkg): module for module, pkg in PACKAGES.items()}


def module_of(requirement: str) -> str:
    """The import name of a requirement (``scikit-learn`` → ``sklearn``)."""
    name = requirement_name(requirement)
    return _MODULE_OF.get(name, name.replace("-", "_"))


def importable_without(module: str, folder: str, path: Optional[Sequence] = None) -> bool:
    """Whether ``module`` can be imported from ``path`` (``sys.path``) without ``folder``."""
    from importlib.machinery import PathFinder

    folder = os.path.normpath(folder)
    path = [p for p in (sys.path if path is None else path)
            if isinstance(p, str) and os.path.normpath(p) != folder]
    try:
        return PathFinder.find_spec(module, path) is not None
    except (ImportError, ValueError):
        return False


def needed(requirements: Iterable[str], available: Callable[[str], bool]) -> list[str]:
    """The requirements whose module ``available`` (import name → bool) says is not there
    without the private folder; they are what the folder must hold."""
    return [r for r in requirements if not available(module_of(r))]


def estimate_mb(requirements: Iterable[str], platform: str = sys.platform,
                cpu_only: bool = False) -> list[tuple[str, int]]:
    """(requirement, approximate download in MB) per requirement: see DOWNLOAD_MB."""
    key = "win32" if platform.startswith("win") else (
        "darwin" if platform == "darwin" else ("linux-cpu" if cpu_only else "linux"))
    out: list[tuple[str, int]] = []
    for req in requirements:
        size = DOWNLOAD_MB.get(requirement_name(req), 5)
        out.append((req, size[key] if isinstance(size, dict) else size))
    return out


def running_versions(names: Iterable[str] = KEEP_FROM_QGIS) -> dict:
    """The running Python's versions of ``names`` (an imported module's ``__version__``,
    else its installed metadata), local labels (``+mkl``) dropped; absent ones left out."""
    from importlib import metadata

    out = {}
    for name in names:
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None) if module is not None else None
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        out[name] = str(version).split("+", 1)[0]
    return out


_PINNABLE = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")


def environment_versions(folder: Optional[str] = None,
                         path: Optional[Sequence] = None) -> dict:
    """Canonical name → version of every distribution the running Python can import,
    without ``folder`` (the first on ``path`` wins, as for imports; local labels dropped;
    versions pip could not pin, such as Debian's ``0.0.0`` placeholders, left out)."""
    from importlib import metadata

    skip = os.path.normpath(folder) if folder else None
    path = [p for p in (sys.path if path is None else path)
            if isinstance(p, str) and os.path.normpath(p) != skip]
    out: dict[str, str] = {}
    for dist in metadata.distributions(path=path):
        try:
            name, version = dist.metadata["Name"], dist.version
        except Exception:  # noqa: BLE001 (a broken dist-info: not pinnable)
            continue
        if not name or not version:
            continue
        version = str(version).split("+", 1)[0]
        if _PINNABLE.fullmatch(version) and version.strip("0.") != "":
            out.setdefault(requirement_name(name), version)
    return out
