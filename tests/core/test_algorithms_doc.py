"""docs/algorithms.md is generated from the algorithms' specs (core/spec/): the committed
file must be what scripts/gen_algorithms_doc.py writes now."""

import importlib.util
import os
import subprocess
import sys

from conftest import REPO


def _generator():
    path = os.path.join(REPO, "scripts", "gen_algorithms_doc.py")
    spec = importlib.util.spec_from_file_location("gen_algorithms_doc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_algorithms_doc_is_up_to_date():
    generator = _generator()
    with open(generator.DOC, encoding="utf-8") as fh:
        committed = fh.read()
    assert committed == generator.render(), (
        "docs/algorithms.md is out of date: regenerate it with "
        ".venv/bin/python scripts/gen_algorithms_doc.py")


def test_algorithms_doc_lists_every_parameter():
    from special_qgis.core.spec import all_specs

    text = _generator().render()
    for spec in all_specs():
        assert f"## special:{spec.id}\n" in text
        for p in spec.params:
            assert f"| `{p.name}` |" in text, (spec.id, p.name)


def test_generator_and_specs_do_not_import_qgis():
    """The specs are core: the doc is generated without QGIS."""
    code = ("import runpy, sys; g = runpy.run_path('scripts/gen_algorithms_doc.py'); "
            "g['render'](); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('qgis', 'PyQt5', "
            "'PyQt6')], 'QGIS imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
