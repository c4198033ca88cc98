"""A missing Python package: reported once at load with the command that installs it; QGIS
keeps working, the algorithms that need it say so, the others still run."""

import json
import os
import subprocess
import sys

import numpy as np

from special_qgis.core import dependencies

from conftest import REPO
from rasters import write_gtiff

# Runs in a fresh interpreter in which the given modules cannot be imported.
SCRIPT = r'''
import importlib.abc, json, os, sys
BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{name}'")
        return None

sys.meta_path.insert(0, Block())
from qgis.core import QgsApplication, QgsMessageLog
app = QgsApplication([], False)
app.initQgis()
sys.path.append("/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
logged = []
QgsApplication.messageLog().messageReceived.connect(
    lambda text, tag, level: logged.append(text) if tag == "SPECIAL hyperspectral" else None)
from special_qgis.processing_provider.provider import SpecialProvider
provider = SpecialProvider()
QgsApplication.processingRegistry().addProvider(provider)
provider.refreshAlgorithms()  # a second load must not report again
out = {"logged": logged, "algorithms": {}}
for alg in provider.algorithms():
    ok, why = alg.canExecute()
    out["algorithms"][alg.id()] = [ok, why]
if sys.argv[2:]:
    import processing
    try:
        processing.run("special:pseudorgb", {"INPUT": sys.argv[2], "OUTPUT": sys.argv[3]})
        out["pseudorgb"] = "ran"
    except Exception as exc:
        out["pseudorgb"] = str(exc)
    from qgis.core import QgsProcessingFeedback
    errors = []

    class Feedback(QgsProcessingFeedback):
        def reportError(self, error, fatalError=False):
            errors.append(error)

    try:
        processing.run("special:pseudolabel", {"INPUT": sys.argv[2], "CLASSES": "a;b",
                       "OUTPUT_LABELS": sys.argv[3] + "l.tif",
                       "OUTPUT_CONFIDENCE": sys.argv[3] + "c.tif"}, feedback=Feedback())
        out["pseudolabel"] = "ran"
    except Exception as exc:
        out["pseudolabel"] = str(exc) + " " + " ".join(errors)
print("RESULT" + json.dumps(out))
'''


def _load_without(blocked, *args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(blocked), *args], env=env,
                          capture_output=True, text=True, timeout=180)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT"):])


def test_without_torch_and_open_clip(tmp_path):
    src = write_gtiff(str(tmp_path / "scene.tif"), np.random.default_rng(0).random(
        (6, 20, 20)).astype("float32"), np.linspace(450, 900, 6))
    out = _load_without(["torch", "open_clip"], src, str(tmp_path / "rgb.tif"))
    assert len(out["logged"]) == 1, out["logged"]  # once, not per refresh
    message = out["logged"][0]
    assert "torch" in message and "open_clip_torch" in message
    assert "-m pip install --user " in message and _pin("torch") in message  # the pins
    algorithms = out["algorithms"]
    assert algorithms["special:pseudorgb"][0] and algorithms["special:accuracy"][0]
    for alg_id in ("special:pseudolabel", "special:noiserobust", "special:applymodel",
                   "special:classify"):
        ok, why = algorithms[alg_id]
        assert not ok and "pip install" in why, alg_id
    assert not algorithms["special:noiserobust"][1].count("open_clip")  # only what it needs
    assert out["pseudorgb"] == "ran" and (tmp_path / "rgb.tif").exists()
    assert "Missing Python package(s)" in out["pseudolabel"]


def test_without_rasterio_every_algorithm_says_so():
    out = _load_without(["rasterio"])
    assert len(out["logged"]) == 1 and _pin("rasterio") in out["logged"][0]
    assert sorted(out["algorithms"]) == sorted(
        f"special:{m}" for m in ("pseudorgb", "importproduct", "pseudolabel", "noiserobust",
                                 "applymodel", "classify", "accuracy"))
    assert all(not ok and "rasterio" in why for ok, why in out["algorithms"].values())


def _pin(package):
    with open(os.path.join(REPO, "requirements.txt")) as fh:
        return next(line.strip() for line in fh if line.startswith(package + "=="))


def test_install_command_uses_the_pins():
    command = dependencies.install_command(["open_clip", "sklearn"])
    assert command.endswith(f"pip install --user {_pin('torchvision')} "
                            f"{_pin('open_clip_torch')} {_pin('scikit-learn')}")
    assert dependencies.missing(["rasterio", "no_such_module_here"]) == ["no_such_module_here"]


def test_the_plugin_folder_carries_the_pins(tmp_path):
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "install_plugin.py"),
                    "--build", str(tmp_path)], check=True, capture_output=True)
    with open(os.path.join(REPO, "requirements.txt")) as a, \
            open(tmp_path / "special_qgis" / "requirements.txt") as b:
        assert a.read() == b.read()


def test_training_never_loads_triton():
    """torch.optim pulls in torch._dynamo, which loads Triton's own LLVM when Triton is
    installed; that crashed desktop QGIS (Mesa's libLLVM is loaded there). The plugin's
    torch stages hide Triton from PyTorch."""
    script = (
        "from special_qgis.core.device import resolve_device\n"
        "resolve_device('cpu')\n"
        "import torch\n"
        "net = torch.nn.Linear(3, 2)\n"
        "opt = torch.optim.Adam(net.parameters())\n"
        "net(torch.randn(4, 3)).sum().backward()\n"
        "opt.step()\n"
        "print(any('libtriton' in line for line in open('/proc/self/maps')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
