"""Installing the plugin's Python packages for the Python that QGIS runs, into a folder
private to the QGIS profile (for users of the plugin ZIP who have no torch, open_clip,
rasterio or scikit-learn).

QGIS-free: the dialog, the background task and the message-bar button are in
``special_qgis/dependency_installer.py``. What is decided here:

* **Which interpreter.** Inside QGIS ``sys.executable`` is QGIS itself, not Python:
  :func:`python_candidates` lists where the Python of each platform's QGIS lies and
  :func:`find_python` takes the first that runs and reports the running major.minor.
* **Where.** ``<profile>/python/special_qgis_deps/pyX.Y`` (:func:`private_folder`), never
  the system's site-packages and never ``--user``; one folder per Python version, so a
  QGIS built on another Python never loads binaries built for this one.
* **How.** ``pip install --target`` into a temporary sibling folder, moved into place
  only when pip succeeded (:func:`install`): a failed or cancelled pip leaves the
  previous folder as it was.
* **numpy stays QGIS's.** QGIS's and GDAL's compiled modules are built against the numpy
  QGIS runs. pip is constrained to that very version (``--target`` makes pip ignore what
  is installed, so only a constraint keeps it from choosing another), and the copy pip
  put into the folder is removed afterwards: numpy always comes from QGIS.
* **QGIS's own versions first.** Every other package QGIS's Python already has is pinned
  to its version too, as long as that fits (a pin pip reports in a conflict is dropped
  and pip runs again), and pip's copies of them are removed as well: the folder holds
  only what QGIS lacks or has in a version these packages cannot use (on Debian 12's
  QGIS: sympy, setuptools, idna, among 52 packages; Debian's scipy, pillow, requests,
  PyYAML... stay in use).
* **sys.path order** (:func:`activate`): the folder goes *before* the site-packages
  folders, after the standard library and QGIS's own Python folders. Behind them, the
  older copies a system Python holds would win over the versions pip had to choose
  (Debian 12's sympy 1.11 breaks torch 2.14's optimisers, which need 1.13). In front,
  it shadows only those: numpy is never in it, GDAL's and QGIS's bindings are never a
  dependency of these packages, and what QGIS's Python has in a fitting version is
  left out of it.

The modules: :mod:`.python` (which interpreter, where, ``sys.path``), :mod:`.requirements`
(what to install, the versions already there), :mod:`.pip` (pip's command line, output and
process), :mod:`.installing` (all or nothing into the folder), :mod:`.restart` (whether the
session must restart), :mod:`.errors`.
"""

from .errors import InstallError
from .installing import MAX_ROUNDS, InstallResult, folder_size_mb, install, recover
from .pip import CPU_TORCH_INDEX, PipOutput, pip_command, run_pip
from .python import (
    FOLDER_NAME,
    PythonInfo,
    activate,
    find_python,
    private_folder,
    probe_python,
    python_candidates,
)
from .requirements import (
    DISK_FACTOR,
    DOWNLOAD_MB,
    KEEP_FROM_QGIS,
    environment_versions,
    estimate_mb,
    importable_without,
    module_of,
    needed,
    read_requirements,
    requirement_name,
    running_versions,
)
from .restart import needs_restart, satisfies, top_level_modules

__all__ = [
    "CPU_TORCH_INDEX", "DISK_FACTOR", "DOWNLOAD_MB", "FOLDER_NAME", "KEEP_FROM_QGIS",
    "MAX_ROUNDS", "InstallError", "InstallResult", "PipOutput", "PythonInfo", "activate",
    "environment_versions", "estimate_mb", "find_python", "folder_size_mb",
    "importable_without", "install", "module_of", "needed", "needs_restart", "pip_command",
    "private_folder", "probe_python", "python_candidates", "read_requirements", "recover",
    "requirement_name", "run_pip", "running_versions", "satisfies", "top_level_modules",
]
