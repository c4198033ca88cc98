"""After an install: whether what this QGIS session already imported is a version the
installed packages cannot use (only a restart loads the new ones)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Optional

from .installing import _dist_infos
from .requirements import environment_versions, requirement_name

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
