"""QGIS 4 (PyQt6) readiness: no unscoped QGIS or Qt enum anywhere in the project.

PyQt6 drops the unscoped enum names (``Qgis.Warning``, ``Qt.AlignLeft``,
``QgsProcessingParameterDefinition.FlagAdvanced``): under QGIS 4 they raise AttributeError.
Their class-scoped forms (``Qgis.MessageLevel.Warning``, ...) work on QGIS 3.22 to 4.x. As
QGIS's own pyqt5_to_pyqt6 migration script does, every attribute chain rooted at a name
imported from qgis/PyQt is resolved against the QGIS running the tests: a chain that
reaches an enum member through anything but the member's own enum type is unscoped.
"""

import ast
import enum
import importlib
import os

from conftest import REPO

SOURCE_FOLDERS = ("special_qgis", "processing_provider", "core", "scripts", "tests", "bench")
QT_MODULES = ("qgis", "PyQt5", "PyQt6")
# Names that exist on QGIS 3.22 as scoped enums but are gone in QGIS 4.
REMOVED_IN_QGIS4 = {
    "QgsMapLayerType": "isinstance(layer, QgsVectorLayer), or Qgis.LayerType (3.30+)",
}


_OLD_EXEC = ".exec" + "_("  # spelt in two so that this file does not match itself


def _python_files():
    for folder in SOURCE_FOLDERS:
        for here, dirs, files in os.walk(os.path.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(here, name)


def _imported_names(tree) -> dict:
    """Names bound by ``import``/``from ... import`` of qgis or PyQt modules → objects."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module \
                and node.module.split(".")[0] in QT_MODULES:
            try:
                module = importlib.import_module(node.module)
            except ImportError:
                continue
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if value is None:
                    try:
                        value = importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        continue
                names[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in QT_MODULES:
                    bound = alias.asname or alias.name.split(".")[0]
                    try:
                        names[bound] = importlib.import_module(
                            alias.name if alias.asname else alias.name.split(".")[0])
                    except ImportError:
                        continue
    return names


def _is_enum_member(value) -> bool:
    # PyQt5's sip enums are ints whose type's metaclass is sip.enumtype; PyQt6's and
    # QGIS's scoped enums are Python enums.
    return isinstance(value, enum.Enum) or type(type(value)).__name__ == "enumtype"


def _chain(node):
    """``a.b.c`` → ("a", ["b", "c"]), or None when the chain does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return (node.id, parts[::-1]) if isinstance(node, ast.Name) else None


def unscoped_enums(source: str, filename: str = "<source>") -> list:
    """'file:line: text' for every unscoped enum (or name gone in QGIS 4) in ``source``."""
    tree = ast.parse(source, filename)
    names = _imported_names(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in REMOVED_IN_QGIS4 and node.id in names:
            found.add((node.lineno, f"{node.id} is gone in QGIS 4: use "
                                    f"{REMOVED_IN_QGIS4[node.id]}"))
        if not isinstance(node, ast.Attribute):
            continue
        chain = _chain(node)
        if chain is None or chain[0] not in names:
            continue
        root, parts = chain
        owner = names[root]
        for depth, attr in enumerate(parts):
            value = getattr(owner, attr, None)
            if value is None:
                break
            if _is_enum_member(value) and type(value) is not owner:
                written = ".".join([root, *parts[:depth + 1]])
                scoped = ".".join([root, *parts[:depth], type(value).__name__, attr])
                found.add((node.lineno, f"{written} is unscoped: write {scoped}"))
                break
            owner = value
    for number, line in enumerate(source.splitlines(), start=1):
        if _OLD_EXEC in line:  # PyQt6 has exec() only (PyQt5 has both)
            found.add((number, "exec_() is gone in PyQt6: write exec()"))
    return [f"{filename}:{line}: {text}" for line, text in sorted(found)]


def test_checker_finds_unscoped_enums(qgis_app):
    """The check itself: it must flag what PyQt6 rejects and pass what it accepts."""
    bad = ("from qgis.core import Qgis, QgsProcessingParameterDefinition, QgsMapLayerType\n"
           "from qgis.PyQt.QtCore import Qt\n"
           "a = Qgis.Warning\n"
           "b = QgsProcessingParameterDefinition.FlagAdvanced | Qt.AlignLeft\n"
           "c = QgsMapLayerType.VectorLayer\n"
           f"dialog{_OLD_EXEC})\n")
    problems = unscoped_enums(bad)
    assert len(problems) == 5, problems
    assert "Qgis.Warning is unscoped: write Qgis.MessageLevel.Warning" in problems[0]
    good = ("from qgis.core import Qgis, QgsProcessingParameterDefinition\n"
            "from qgis.PyQt.QtCore import Qt\n"
            "a = Qgis.MessageLevel.Warning\n"
            "b = QgsProcessingParameterDefinition.Flag.FlagAdvanced | "
            "Qt.AlignmentFlag.AlignLeft\n"
            "c = Qgis.QGIS_VERSION_INT\n")
    assert unscoped_enums(good) == []


def test_no_unscoped_enum_in_the_project(qgis_app):
    problems = []
    for path in sorted(_python_files()):
        with open(path, encoding="utf-8") as fh:
            problems += unscoped_enums(fh.read(), os.path.relpath(path, REPO))
    assert problems == []
