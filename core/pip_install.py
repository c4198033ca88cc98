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
"""

from __future__ import annotations

import collections
import importlib
import json
import ntpath
import os
import posixpath
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from .dependencies import _REQUIREMENTS, PACKAGES
from .progress import Progress, as_progress

FOLDER_NAME = "special_qgis_deps"
# Packages QGIS's own compiled modules (GDAL's, QGIS's) are built against: pinned to the
# running version and never left in the private folder.
KEEP_FROM_QGIS = ("numpy",)
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

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
}
DISK_FACTOR = 1.9  # installed size / download (6.1 GB / 3.1 GB for the measured set)

_WINDOWS_NO_WINDOW = 0x08000000  # CREATE_NO_WINDOW: no console flashing up inside QGIS
_WINDOWS_NEW_GROUP = 0x00000200  # CREATE_NEW_PROCESS_GROUP


class InstallError(RuntimeError):
    """pip could not install, or no suitable Python was found: the message says which
    package and why (pip's last error lines)."""


# --------------------------------------------------------------------------- where


def private_folder(settings_dir: str,
                   version: Sequence[int | str] = sys.version_info) -> str:
    """The plugin's private packages folder in the QGIS profile whose folder is
    ``settings_dir`` (``QgsApplication.qgisSettingsDirPath()``)."""
    return os.path.join(os.path.normpath(settings_dir), "python", FOLDER_NAME,
                        f"py{version[0]}.{version[1]}")


def _is_site_dir(entry: str) -> bool:
    return os.path.basename(os.path.normpath(entry)).lower() in ("site-packages",
                                                                 "dist-packages")


def activate(folder: str, path: Optional[list] = None) -> bool:
    """Put ``folder`` on ``path`` (``sys.path``) before the first site-packages folder
    (after the standard library and QGIS's own Python folders), if it exists and is not
    there yet; True when it is on the path afterwards. Import caches are invalidated, so
    a folder created or replaced while QGIS runs is seen at once."""
    path = sys.path if path is None else path
    folder = os.path.normpath(folder)
    if not os.path.isdir(folder):
        return False
    if folder not in [os.path.normpath(p) for p in path if isinstance(p, str)]:
        index = next((i for i, p in enumerate(path) if isinstance(p, str) and _is_site_dir(p)),
                     len(path))
        path.insert(index, folder)
    sys.path_importer_cache.pop(folder, None)
    importlib.invalidate_caches()
    return True


# --------------------------------------------------------------------------- which Python


def python_candidates(executable: str, prefix: str, base_prefix: str, platform: str,
                      version: Sequence[int | str], exists: Callable[[str], bool],
                      path: str = "") -> list[str]:
    """Where the Python interpreter of a QGIS installation can lie, best first; only those
    ``exists`` confirms. Pure: the arguments are ``sys.executable``, ``sys.prefix``,
    ``sys.base_prefix``, ``sys.platform``, ``sys.version_info`` and ``$PATH`` of QGIS's
    Python (inside QGIS, ``executable`` is the QGIS program).

    * Windows (OSGeo4W, the standalone installer): ``python.exe`` in ``base_prefix`` (e.g.
      ``C:\\OSGeo4W\\apps\\Python312``); a venv's ``Scripts\\python.exe`` first.
      ``pythonw.exe`` is never used (no console streams: pip's output would be lost).
    * macOS (QGIS.app): ``Contents/MacOS/bin/python3.X`` beside the QGIS program, then
      ``bin/python3.X`` of the prefixes (a Python.framework inside the bundle).
    * Linux and other Unixes: ``bin/python3.X`` of the prefixes, then on ``$PATH``.

    Before all of them, ``executable`` itself when it is a Python (QGIS's Python run
    directly, as by qgis_process's scripts or the tests).
    """
    major, minor = int(version[0]), int(version[1])
    found: list[str] = []

    def add(candidate: str) -> None:
        if candidate and candidate not in found and exists(candidate):
            found.append(candidate)

    p: types.ModuleType
    if platform.startswith("win"):
        p = ntpath
        base = p.basename(executable).lower()
        if base in ("python.exe", f"python{major}.exe", f"python{major}.{minor}.exe"):
            add(executable)
        elif base.startswith("pythonw"):
            add(p.join(p.dirname(executable), "python.exe"))
        if prefix and base_prefix and p.normcase(prefix) != p.normcase(base_prefix):
            add(p.join(prefix, "Scripts", "python.exe"))
        for root in (base_prefix, prefix):
            if root:
                add(p.join(root, "python.exe"))
                add(p.join(root, f"python{major}.exe"))
        return found

    p = posixpath
    names = (f"python{major}.{minor}", f"python{major}")
    base = p.basename(executable)
    if base.startswith("python") and not base.startswith("pythonw"):
        add(executable)
    roots = [prefix, base_prefix]
    if platform == "darwin" and executable:
        roots.insert(0, p.dirname(executable))  # QGIS.app/Contents/MacOS (/bin/python3)
    for root in roots:
        if root:
            for name in names:
                add(p.join(root, "bin", name))
    for folder in (path or "").split(":"):
        if folder:
            for name in names:
                add(p.join(folder, name))
    return found


@dataclass
class PythonInfo:
    path: str
    version: tuple
    pip: Optional[str]  # pip's version, None when that Python has no pip


_PROBE = ("import sys, json, importlib.util as u\n"
          "pip = None\n"
          "if u.find_spec('pip'):\n"
          "    try:\n"
          "        from importlib.metadata import version; pip = version('pip')\n"
          "    except Exception:\n"
          "        pip = 'unknown'\n"
          "print(json.dumps([sys.version_info[0], sys.version_info[1], pip]))\n")


def _creationflags(new_group: bool = False) -> int:
    if sys.platform != "win32":
        return 0
    return _WINDOWS_NO_WINDOW | (_WINDOWS_NEW_GROUP if new_group else 0)


def probe_python(candidate: str, timeout: float = 60) -> PythonInfo:
    """Run ``candidate`` and ask its version and whether it has pip (OSError if it does
    not run)."""
    try:
        out = subprocess.run([candidate, "-c", _PROBE], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL,
                             creationflags=_creationflags())
    except subprocess.TimeoutExpired as exc:
        raise OSError(f"{candidate} did not answer within {timeout:.0f} s") from exc
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise OSError(f"{candidate} failed: {(out.stderr or out.stdout).strip()[-300:]}")
    major, minor, pip = json.loads(lines[-1])
    return PythonInfo(candidate, (major, minor), pip)


def find_python(executable: Optional[str] = None, prefix: Optional[str] = None,
                base_prefix: Optional[str] = None, platform: Optional[str] = None,
                version: Optional[Sequence[int]] = None, path: Optional[str] = None,
                probe: Callable[[str], PythonInfo] = probe_python) -> PythonInfo:
    """The Python interpreter QGIS runs, checked: it runs, it is the same major.minor as
    the running Python, and it has pip. Defaults: the running Python's own values.
    :class:`InstallError` with what was tried otherwise."""
    executable = sys.executable if executable is None else executable
    prefix = sys.prefix if prefix is None else prefix
    base_prefix = getattr(sys, "base_prefix", prefix) if base_prefix is None else base_prefix
    platform = sys.platform if platform is None else platform
    version = tuple(sys.version_info[:2] if version is None else version[:2])
    path = os.environ.get("PATH", "") if path is None else path
    want = f"{version[0]}.{version[1]}"
    candidates = python_candidates(executable, prefix, base_prefix, platform, version,
                                   os.path.isfile, path)
    tried, without_pip = [], []
    for candidate in candidates:
        try:
            info = probe(candidate)
        except OSError as exc:
            tried.append(f"{candidate}: {exc}")
            continue
        if tuple(info.version) != version:
            tried.append(f"{candidate}: Python {info.version[0]}.{info.version[1]}")
            continue
        if info.pip is None:
            without_pip.append(candidate)
            continue
        return info
    if without_pip:
        raise InstallError(
            f"The Python that QGIS runs ({without_pip[0]}, Python {want}) has no pip. Install "
            f"pip for it (Debian/Ubuntu: sudo apt install python3-pip; Fedora: sudo dnf "
            f"install python3-pip; OSGeo4W: the python3-pip package in the OSGeo4W setup), "
            f"then try again.")
    where = "; ".join(tried) if tried else "none of the usual places exists"
    raise InstallError(
        f"Could not find the Python {want} interpreter that QGIS runs (QGIS is "
        f"{executable}, its Python prefix {base_prefix}). Tried: {where}.")


# --------------------------------------------------------------------------- what


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


def pip_command(python: str, target: str, requirements: Sequence[str],
                constraints_file: Optional[str] = None, cpu_only: bool = False,
                extra_args: Sequence[str] = ()) -> list[str]:
    """The pip command line that installs ``requirements`` into ``target``."""
    cmd = [python, "-m", "pip", "install", "--target", target, "--no-input",
           "--disable-pip-version-check", "--no-warn-script-location", "--progress-bar",
           "off", "--prefer-binary", "--upgrade-strategy", "only-if-needed"]
    if constraints_file:
        cmd += ["--constraint", constraints_file]
    if cpu_only:
        cmd += ["--extra-index-url", CPU_TORCH_INDEX]
    return cmd + list(extra_args) + list(requirements)


# --------------------------------------------------------------------------- pip's output

_SIZE = re.compile(r"\(([\d.]+)\s*([kMG]B)\)")
_UNITS = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}
_FAILED_NAME = (
    re.compile(r"No matching distribution found for ([^\s;]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s;]+)"),
    re.compile(r"Cannot install (.+?)(?: because|$)"),
    re.compile(r"Failed (?:to build|building wheel for) ([^\s;]+)"),
)


class PipOutput:
    """Turns pip's output lines into a coarse progress (downloads weighed by size against
    the estimate, then installing) and keeps the last lines for an error message."""

    def __init__(self, total_mb: float = 0.0) -> None:
        self.total_mb = max(float(total_mb), 1.0)
        self.done_mb = 0.0
        self._pending_mb = 0.0
        self.lines: collections.deque[str] = collections.deque(maxlen=60)
        self.fraction = 0.0
        self.text = "Starting pip"
        self.collected: list[str] = []

    def feed(self, line: str) -> Optional[tuple[float, str]]:
        """One line of pip's output; (fraction, status text) when the status changed."""
        line = line.rstrip()
        if not line.strip():
            return None
        self.lines.append(line)
        stripped = line.strip()
        self.done_mb += self._pending_mb  # the previous download finished
        self._pending_mb = 0.0
        text = None
        if stripped.startswith("Collecting "):
            name = stripped[len("Collecting "):].split(" (from", 1)[0]
            self.collected.append(name)
            text = f"Collecting {name}"
        elif stripped.startswith(("Downloading ", "Using cached ")):
            size = _SIZE.search(stripped)
            if size:
                self._pending_mb = float(size.group(1)) * _UNITS[size.group(2)]
            what = os.path.basename(stripped.split()[1 if stripped[0] == "D" else 2])
            text = f"Downloading {what}" + (f" ({size.group(1)} {size.group(2)})"
                                            if size else "")
        elif stripped.startswith("Processing "):
            text = f"Unpacking {os.path.basename(stripped.split(None, 1)[1])}"
        elif m := re.match(r"Progress (\d+) of (\d+)", stripped):  # pip >= 24.1 raw bar
            self.fraction = max(self.fraction, min(0.85, 0.85 * (
                self.done_mb + int(m.group(1)) / 1e6) / self.total_mb))
            return self.fraction, self.text
        elif stripped.startswith("Installing collected packages:"):
            names = [n.strip() for n in stripped.split(":", 1)[1].split(",") if n.strip()]
            self.fraction = 0.9
            shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
            self.text = f"Installing {len(names)} packages: {shown}"
            return self.fraction, self.text
        elif stripped.startswith("Successfully installed"):
            self.fraction = 0.97
            self.text = "Installed; moving into place"
            return self.fraction, self.text
        elif stripped.startswith("ERROR:"):
            return None  # kept for the error message; pip may yet run again
        if text is None:
            return None
        self.fraction = max(self.fraction, min(0.85, 0.85 * self.done_mb / self.total_mb))
        self.text = text
        return self.fraction, self.text

    def error_lines(self, count: int = 12) -> list[str]:
        """pip's last lines from its first ERROR line on (at most ``count``)."""
        lines = list(self.lines)
        first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ERROR:")),
                     max(0, len(lines) - count))
        return [ln for ln in lines[first:] if ln.strip()][-count:]

    def failed_package(self) -> Optional[str]:
        for line in self.lines:
            for pattern in _FAILED_NAME:
                m = pattern.search(line)
                if m:
                    return m.group(1).rstrip(".,:")
        return None


# --------------------------------------------------------------------------- install


@dataclass
class InstallResult:
    folder: str
    installed: dict = field(default_factory=dict)  # project name → version
    size_mb: float = 0.0
    log: list = field(default_factory=list)


def _dist_infos(folder: str) -> dict:
    """project name → (version, dist-info folder) for what pip put into ``folder``."""
    out: dict[str, tuple[str, str]] = {}
    if not os.path.isdir(folder):
        return out
    for entry in os.listdir(folder):
        if entry.endswith(".dist-info"):
            stem = entry[:-len(".dist-info")]
            name, _, version = stem.partition("-")
            out[requirement_name(name)] = (version, os.path.join(folder, entry))
    return out


def _remove_distribution(folder: str, dist_info: str) -> None:
    """Delete what a distribution's RECORD lists (inside ``folder`` only), then the
    folders it leaves empty and its .dist-info."""
    record = os.path.join(dist_info, "RECORD")
    folders = set()
    root = os.path.realpath(folder)
    if os.path.isfile(record):
        with open(record, encoding="utf-8") as fh:
            for row in fh:
                rel = row.rsplit(",", 2)[0].strip().strip('"')
                if not rel:
                    continue
                full = os.path.realpath(os.path.join(folder, rel))
                if not full.startswith(root + os.sep):
                    continue
                if os.path.isfile(full) or os.path.islink(full):
                    os.remove(full)
                parent = os.path.dirname(full)
                while parent.startswith(root + os.sep):
                    folders.add(parent)
                    parent = os.path.dirname(parent)
    for sub in sorted(folders, key=len, reverse=True):
        if os.path.basename(sub) == "__pycache__":
            shutil.rmtree(sub, ignore_errors=True)
            continue
        try:
            cache = os.path.join(sub, "__pycache__")
            if os.path.isdir(cache) and not any(
                    not n.endswith(".pyc") for n in os.listdir(cache)):
                shutil.rmtree(cache, ignore_errors=True)
            os.rmdir(sub)
        except OSError:
            pass  # not empty: other files live there
    shutil.rmtree(dist_info, ignore_errors=True)


def folder_size_mb(folder: str) -> float:
    total = 0
    for here, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(here, name)).st_size
            except OSError:
                pass
    return total / 1e6


def _siblings(folder: str, kind: str) -> list[str]:
    parent, base = os.path.split(folder)
    prefix = f".{base}-{kind}-"
    try:
        return sorted(os.path.join(parent, n) for n in os.listdir(parent)
                      if n.startswith(prefix))
    except OSError:
        return []


def _rmtree(path: str) -> None:
    for _ in range(5):  # Windows: a killed pip's handles may close a moment later
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.2)


def recover(folder: str) -> None:
    """Tidy up after an install that was killed with QGIS: a half-installed temporary
    folder goes; if QGIS died between the two renames of the swap, the previous folder
    comes back."""
    for stale in _siblings(folder, "new"):
        _rmtree(stale)
    old = _siblings(folder, "old")
    if old and not os.path.exists(folder):
        os.rename(old[-1], folder)
        old = old[:-1]
    for stale in old:
        _rmtree(stale)


def _kill(proc: subprocess.Popen) -> None:
    """Stop pip and what it started (a build backend, say)."""
    if proc.poll() is not None:
        return
    try:
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)],
                           capture_output=True, creationflags=_creationflags())
        else:
            os.killpg(proc.pid, signal.SIGTERM)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        if sys.platform != "win32":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        proc.kill()
        proc.wait(timeout=10)


def run_pip(cmd: Sequence[str], output: PipOutput, progress: Optional[Progress] = None,
            env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> int:
    """Run pip, feeding its lines to ``output`` and ``progress``; kill it and raise
    ``Cancelled`` as soon as ``progress`` says the user cancelled."""
    progress = as_progress(progress)
    full_env = dict(os.environ if env is None else env)
    full_env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1",
                    PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore")
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                            encoding="utf-8", errors="replace",
                            start_new_session=sys.platform != "win32",
                            creationflags=_creationflags(new_group=True))
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            progress.check()
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            progress.log_lines([line.rstrip()] if line.strip() else [])
            status = output.feed(line)
            if status is not None:
                progress.update(*status)
        return proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


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


def _write_constraints(path: str, pins: Mapping[str, str]) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    return path


_CONSTRAINT = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)\s*==")
MAX_ROUNDS = 12  # pip runs that each drop the pins found in the way, before dropping all


def _pins_in_the_way(output: PipOutput, pins: Mapping[str, str]) -> Optional[set]:
    """Which of ``pins`` pip failed on (a conflict with them, or a pinned version it
    could not find); an empty set for a conflict it names no pin of; None when pip failed
    on something else (what was asked for)."""
    culprits = {requirement_name(m.group(1)) for line in output.lines
                for m in [_CONSTRAINT.search(line)] if m}
    failed = output.failed_package()
    if failed:
        culprits.add(requirement_name(failed))
    culprits &= set(pins)
    if culprits:
        return culprits
    text = "\n".join(output.lines)
    if "ResolutionImpossible" in text or "conflicting dependencies" in text:
        return set()
    return None


def install(python: str, folder: str, requirements: Sequence[str], *,
            keep: Optional[Mapping[str, str]] = None,
            prefer: Optional[Mapping[str, str]] = None, cpu_only: bool = False,
            extra_args: Sequence[str] = (), total_mb: Optional[float] = None,
            progress: Optional[Progress] = None,
            env: Optional[Mapping[str, str]] = None) -> InstallResult:
    """Install ``requirements`` with ``python``'s pip into ``folder``, all or nothing.

    pip installs into a temporary sibling folder (same file system: the final move is a
    rename); only when it succeeded does that folder replace ``folder``. A failure raises
    :class:`InstallError` naming the package with pip's last error lines; a cancel
    (``progress``) kills pip and raises ``Cancelled``; either way ``folder`` is left
    exactly as it was. ``extra_args`` go to pip (``--no-index``, ``--find-links DIR``, an
    index URL).

    Versions (name → version), passed to pip as constraints:

    * ``keep`` (default: the running Python's numpy) always; what pip put into the folder
      of them is removed again: they come from QGIS.
    * ``prefer`` (default: every distribution QGIS's Python already has,
      :func:`environment_versions`) first: pip then takes QGIS's own versions wherever
      they fit, and those copies are removed again too, so the folder shadows nothing it
      need not. The pins pip finds in the way (Debian 12's sympy is too old for torch)
      are dropped, one conflict at a time, and pip runs again (after ``MAX_ROUNDS``
      runs, without any of them).
    """
    progress = as_progress(progress)
    folder = os.path.normpath(os.path.abspath(folder))
    keep = running_versions() if keep is None else dict(keep)
    keep = {requirement_name(k): v for k, v in keep.items()}
    asked = {requirement_name(r) for r in requirements}
    prefer = environment_versions(folder) if prefer is None else dict(prefer)
    prefer = {requirement_name(k): v for k, v in prefer.items()}
    prefer = {k: v for k, v in prefer.items() if k not in keep and k not in asked}
    if total_mb is None:
        total_mb = sum(mb for _, mb in estimate_mb(requirements, cpu_only=cpu_only))
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    recover(folder)
    work = tempfile.mkdtemp(prefix="special_qgis_pip-")
    left = dict(prefer)  # QGIS's versions still pinned
    new = None
    log: list = []
    text = "Starting pip"
    try:
        for number in range(MAX_ROUNDS + 2):
            new = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}-new-", dir=parent)
            pins = dict(left, **keep)
            constraints = (_write_constraints(os.path.join(work, f"constraints{number}.txt"),
                                              pins) if pins else None)
            cmd = pip_command(python, new, requirements, constraints, cpu_only, extra_args)
            output = PipOutput(total_mb)
            progress.update(0.0, text)
            code = run_pip(cmd, output, progress, env=env, cwd=work)
            log += list(output.lines)
            if code == 0:
                break
            _rmtree(new)
            new = None
            culprits = _pins_in_the_way(output, left) if left else None
            if culprits is None:
                failed = output.failed_package()
                what = failed or ", ".join(requirement_name(r) for r in requirements)
                raise InstallError(
                    f"pip could not install {what} (exit code {code}). Nothing was changed "
                    f"in {folder}. pip's last lines:\n" + "\n".join(output.error_lines()))
            if not culprits or number >= MAX_ROUNDS - 1:
                culprits = set(left)
            text = ("QGIS's own " + ", ".join(f"{n} {left[n]}" for n in sorted(culprits)[:4])
                    + (f" and {len(culprits) - 4} more" if len(culprits) > 4 else "")
                    + " do not fit: pip again without pinning "
                    + ("it" if len(culprits) == 1 else "them"))
            for name in culprits:
                left.pop(name)
        else:  # not reached: the last round pins nothing of QGIS's and succeeds or raises
            raise InstallError(f"pip could not install into {folder}.")
        progress.check()
        # QGIS's own copies: pinned packages pip installed at QGIS's very version.
        same = dict(prefer, **keep)
        for name, (version, dist_info) in _dist_infos(new).items():
            if name in keep or same.get(name) == version.split("+", 1)[0]:
                _remove_distribution(new, dist_info)
        installed = {name: version for name, (version, _) in _dist_infos(new).items()}
        _swap(new, folder)
        new = None
    except BaseException:
        if new is not None:
            _rmtree(new)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress.update(1.0, "Done")
    return InstallResult(folder, installed, folder_size_mb(folder), log)


def _swap(new: str, folder: str) -> None:
    """Move ``new`` into ``folder``'s place; the previous ``folder`` is deleted once the
    new one is there (two renames: a crash between them is undone by :func:`recover`)."""
    if not os.path.exists(folder):
        os.rename(new, folder)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}-old-",
                           dir=os.path.dirname(folder))
    os.rmdir(old)
    try:
        os.rename(folder, old)
    except OSError as exc:
        raise InstallError(
            f"Could not replace {folder}: {exc}. Its packages are probably in use by this "
            f"QGIS session (Windows locks loaded libraries): restart QGIS and install "
            f"again.") from exc
    try:
        os.rename(new, folder)
    except OSError:
        os.rename(old, folder)
        raise
    _rmtree(old)


# --------------------------------------------------------------------------- after


_NOT_MODULES = {"bin", "Scripts", "share", "include", "etc", "lib", "__pycache__"}


def top_level_modules(folder: str) -> dict:
    """import name → project name for what ``folder`` provides."""
    out = {}
    for name, (_, dist_info) in _dist_infos(folder).items():
        tops: set[str] = set()
        top_level = os.path.join(dist_info, "top_level.txt")
        record = os.path.join(dist_info, "RECORD")
        if os.path.isfile(top_level):
            with open(top_level, encoding="utf-8") as fh:
                tops.update(line.strip() for line in fh if line.strip())
        elif os.path.isfile(record):
            with open(record, encoding="utf-8") as fh:
                for row in fh:
                    first = row.split(",", 1)[0].split("/", 1)[0]
                    if first.endswith(".py"):
                        tops.add(first[:-3])
                    elif first and "." not in first and first not in _NOT_MODULES:
                        tops.add(first)
        for top in tops:
            out[top.split("/")[0]] = name
    return out


_SPEC = re.compile(r"\s*(~=|===|==|!=|<=|>=|<|>)\s*([^\s,]+)\s*")


def _release(version: str) -> Optional[tuple]:
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(version))
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _compare(a: tuple, b: tuple) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def satisfies(version: str, specifier: str) -> Optional[bool]:
    """Whether ``version`` meets a PEP 440 ``specifier`` (``>=1.13.3,<2``; release numbers
    only, pre-releases as their release); None when it cannot tell."""
    have = _release(version)
    if have is None:
        return None
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        m = _SPEC.fullmatch(clause)
        if not m:
            return None
        op, target = m.groups()
        if target.endswith(".*"):
            want = _release(target[:-2])
            if want is None or op not in ("==", "!="):
                return None
            same = have[:len(want)] == want
            if same != (op == "=="):
                return False
            continue
        want = _release(target)
        if want is None:
            return None
        c = _compare(have, want)
        ok = {"==": c == 0, "===": c == 0, "!=": c != 0, "<=": c <= 0, ">=": c >= 0,
              "<": c < 0, ">": c > 0,
              "~=": c >= 0 and have[:max(1, len(want) - 1)] == want[:max(1, len(want) - 1)]}
        if not ok[op]:
            return False
    return True


def _requires(folder: str) -> dict:
    """Canonical project name → the specifiers the distributions in ``folder`` ask of it
    (extras' requirements left out)."""
    out: dict = {}
    for _, dist_info in _dist_infos(folder).values():
        try:
            with open(os.path.join(dist_info, "METADATA"), encoding="utf-8") as fh:
                lines = fh.read().split("\n\n", 1)[0].splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            req, _, marker = line[len("Requires-Dist:"):].partition(";")
            if "extra" in marker:
                continue
            name = requirement_name(req)
            spec = re.sub(r"^\s*[A-Za-z0-9_.\-]+\s*(\[[^\]]*\])?", "", req).strip()
            out.setdefault(name, []).append(spec.strip("() "))
    return out


def needs_restart(folder: str, installed: Mapping[str, str],
                  modules: Optional[Mapping] = None,
                  loaded_versions: Optional[Mapping[str, str]] = None) -> list[str]:
    """The packages of ``folder`` that this QGIS session already imported (or
    half-imported) in a version the installed packages cannot use: only a restart
    loads the new ones. A loaded version that meets every requirement on it (certifi,
    packaging...) is fine. ``installed``: project name → version, as :func:`install`
    returns; ``loaded_versions``: project → version of what is loaded (default: the
    module's ``__version__``, else the environment's metadata without ``folder``)."""
    modules = sys.modules if modules is None else modules
    loaded_tops = {name.split(".", 1)[0] for name in list(modules)}
    environment = None
    requires = _requires(folder)
    stale = []
    for top, project in sorted(top_level_modules(folder).items()):
        if top not in loaded_tops or top.startswith("_"):
            continue
        wanted = installed.get(project)
        module = modules.get(top)
        if module is None:  # only submodules: a failed import left them
            stale.append(f"{project} (partly imported)")
            continue
        version = getattr(module, "__version__", None)
        if loaded_versions is not None and project in loaded_versions:
            version = loaded_versions[project]
        if not isinstance(version, str):
            if environment is None:
                environment = environment_versions(folder)
            version = environment.get(project)
        if version is not None and wanted is not None and \
                version.split("+")[0] == wanted.split("+")[0]:
            continue
        specs = requires.get(project, [])
        if version is not None and all(satisfies(version, spec) for spec in specs):
            continue
        stale.append(f"{project} (loaded: {version or '?'}, installed: {wanted or '?'})")
    return sorted(set(stale))
