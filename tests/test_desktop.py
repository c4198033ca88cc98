"""Desktop QGIS (under Xvfb) loads the plugin from the profile, as a user's QGIS would."""

import json
import os
import subprocess

from conftest import REPO


def test_desktop_qgis_loads_plugin(tmp_path):
    profiles = tmp_path / "profiles-root"
    subprocess.run([os.path.join(REPO, ".venv", "bin", "python"),
                    os.path.join(REPO, "scripts", "install_plugin.py"), "--link", str(profiles)],
                   check=True, capture_output=True)
    report = tmp_path / "report.json"
    env = dict(os.environ, SPECIAL_DESKTOP_REPORT=str(report),
               QGIS_CUSTOM_CONFIG_PATH=str(profiles))
    env.pop("QT_QPA_PLATFORM", None)  # a real X display this time
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24",
           os.path.join(REPO, "scripts", "qgis"), "--nologo",
           "--code", os.path.join(REPO, "tests", "desktop_check.py")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert report.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(report.read_text())
    assert "special_qgis" in data["active_plugins"]
    assert data["provider"]
    assert {"special:pseudorgb", "special:pseudolabel"} <= set(data["algorithms"])
    assert (tmp_path / "report.json.png").stat().st_size > 10000
