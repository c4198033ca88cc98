"""Which of the Python packages the plugin needs are missing, and the command that installs
them. Checked without importing them (torch takes seconds to import)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterable

# import name → the name pip installs it under
PACKAGES = {
    "rasterio": "rasterio",
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "sklearn": "scikit-learn",
}
RASTER = ("rasterio",)
CLIP = ("rasterio", "torch", "torchvision", "open_clip")
NETWORK = ("rasterio", "torch", "sklearn")

# The pinned versions: requirements.txt in the plugin folder, beside core/ (in the
# repository special_qgis/requirements.txt links to the top-level file).
_REQUIREMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "requirements.txt")


def missing(modules: Iterable[str]) -> list[str]:
    """The import names among ``modules`` that cannot be imported here."""
    absent = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            absent.append(name)
    return absent


def _pins() -> dict:
    pins = {}
    try:
        with open(_REQUIREMENTS, encoding="utf-8") as fh:
            for line in fh:
                line = line.split("#")[0].strip()
                if "==" in line:
                    name, version = line.split("==", 1)
                    pins[name.strip().lower()] = version.strip()
    except OSError:
        pass
    return pins


def _python() -> str:
    """The interpreter QGIS runs (inside QGIS, sys.executable is QGIS itself): the first
    place core/pip_install.python_candidates names that exists (not run, to stay quick)."""
    from .pip_install import python_candidates

    found = python_candidates(sys.executable, sys.prefix, getattr(sys, "base_prefix", ""),
                              sys.platform, sys.version_info, os.path.isfile,
                              os.environ.get("PATH", ""))
    return found[0] if found else (shutil.which("python3") or "python3")


def install_command(modules: Iterable[str]) -> str:
    pins = _pins()

    def pinned(package: str) -> str:
        return f"{package}=={pins[package]}" if package in pins else package

    packages = []
    for module in modules:
        package = PACKAGES.get(module, module)
        if package == "open_clip_torch":
            # Unpinned, pip would bring the newest torchvision, built for another torch.
            packages.append(pinned("torchvision"))
        packages.append(pinned(package))
        if package == "rasterio" and "affine" in pins:
            packages.append(pinned("affine"))  # see requirements.txt
    return f"{_python()} -m pip install --user " + " ".join(dict.fromkeys(packages))


def message(modules: Iterable[str]) -> str:
    """What a user reads when ``modules`` are missing: what, and the command to fix it."""
    modules = list(modules)
    names = ", ".join(PACKAGES.get(m, m) for m in modules)
    return (f"Missing Python package(s) for SPECIAL hyperspectral: {names}. In desktop QGIS, "
            f"Plugins ▸ SPECIAL hyperspectral ▸ Install dependencies… (also the message "
            f"bar's button) installs them into a folder of your QGIS profile. Or install them "
            f"by hand for the Python that QGIS runs, then restart QGIS:\n"
            f"  {install_command(modules)}\n"
            f"(On Debian/Ubuntu with a system Python, add --break-system-packages, or use the "
            f"project's environment: 'make install', then start QGIS with 'scripts/qgis'.)")
