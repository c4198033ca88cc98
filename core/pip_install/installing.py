"""Installing into the private folder, all or nothing: pip into a temporary sibling
folder, QGIS's own copies removed, then swapped into place; :func:`recover` tidies up after
a crash."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from ..progress import Progress, as_progress
from .errors import InstallError
from .pip import PipOutput, _pins_in_the_way, _write_constraints, pip_command, run_pip
from .requirements import environment_versions, estimate_mb, requirement_name, running_versions

MAX_ROUNDS = 12  # pip runs that each drop the pins found in the way, before dropping all


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
