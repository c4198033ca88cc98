"""The package layout: one importable name, and a QGIS-free core."""

import ast
import os
import subprocess
import sys

from conftest import REPO


def _imported_modules(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_core_never_imports_qgis():
    offenders = []
    for folder, _, files in os.walk(os.path.join(REPO, "core")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                offenders += [f"{path}: {m}" for m in _imported_modules(path)
                              if m == "qgis" or m.startswith("qgis.")]
    assert offenders == []


def test_core_imports_in_plain_python_without_qgis():
    """A plain script imports every core module and QGIS stays unloaded."""
    modules = []
    for here, dirs, names in os.walk(os.path.join(REPO, "core")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        package = os.path.relpath(here, os.path.join(REPO, "core")).replace(os.sep, ".")
        for name in names:
            if name.endswith(".py"):
                module = name[:-3] if name != "__init__.py" else ""
                dotted = ".".join(p for p in (package, module) if p and p != ".")
                if dotted:
                    modules.append(dotted)
    modules.sort()
    assert "pseudo_rgb" in modules and "accuracy.report" in modules
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module('special_qgis.core.' + m)\n"
        "assert not any(k == 'qgis' or k.startswith('qgis.') for k in sys.modules), "
        "[k for k in sys.modules if k.startswith('qgis')]\n"
        "import special_qgis.core as c; print(c.__file__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", check=True)
    # Through special_qgis/core, the committed link to the top-level core/.
    assert os.path.realpath(out.stdout.strip()) == os.path.join(REPO, "core", "__init__.py")
    assert os.path.islink(os.path.join(REPO, "special_qgis", "core"))


def test_no_bare_core_package_on_the_path():
    """Only `special_qgis` is importable from a plain script; `core` is not."""
    code = ("import importlib.util as u; "
            "print(u.find_spec('core'), u.find_spec('processing_provider'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", check=True)
    assert out.stdout.strip() == "None None"


def test_built_plugin_folder_is_self_contained(tmp_path):
    """The copy for a user's profile / ZIP holds core and processing_provider inside."""
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "install_plugin.py"),
                    "--build", str(tmp_path)], check=True, capture_output=True)
    plugin = tmp_path / "special_qgis"
    for item in ("__init__.py", "plugin.py", "metadata.txt", "icon.png",
                 "core/pseudo_rgb.py", "processing_provider/provider.py"):
        assert (plugin / item).is_file(), item
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
            "import special_qgis.core.pseudo_rgb as m; print(m.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", check=True)
    assert out.stdout.strip() == str(plugin / "core" / "pseudo_rgb.py")
