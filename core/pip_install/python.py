"""Which Python interpreter QGIS runs (inside QGIS ``sys.executable`` is QGIS itself), and
where the private packages folder lies and how it goes on ``sys.path``."""

from __future__ import annotations

import importlib
import json
import ntpath
import os
import posixpath
import subprocess
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from .errors import InstallError

FOLDER_NAME = "special_qgis_deps"

_WINDOWS_NO_WINDOW = 0x08000000  # CREATE_NO_WINDOW: no console flashing up inside QGIS
_WINDOWS_NEW_GROUP = 0x00000200  # CREATE_NEW_PROCESS_GROUP


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
