"""The "Install dependencies…" path for users of the plugin ZIP: finding QGIS's Python on
each platform, pip into a folder private to the QGIS profile (all or nothing: a failed or
cancelled pip leaves the folder as it was), and the message-bar button with its dialog.

Real pip, offline: wheels are made here by hand (per the wheel spec) and pip gets
--isolated --no-index --find-links. Nothing touches the user's profile (conftest.py sets
QGIS_CUSTOM_CONFIG_PATH to a sandbox)."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from special_qgis.core import pip_install
from special_qgis.core.errors import Cancelled
from special_qgis.core.progress import Progress

from conftest import REPO

PY = (sys.version_info[0], sys.version_info[1])
SRC = os.path.join(REPO, ".venv", "src")  # where special_qgis imports from (make install)


# --------------------------------------------------------------------------- helpers


def make_wheel(folder, name, version, requires=()):
    """A pure-Python wheel, built by hand per the wheel spec (PEP 427)."""
    files = {f"{name}/__init__.py": f"__version__ = {version!r}\n"}
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires))
    files[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: special_qgis-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    files[f"{info}/top_level.txt"] = f"{name}\n"
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(data)}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in files.items():
            zf.writestr(member, text)
    return path


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(folder, "tinypkg", "1.0", ["helperpkg>=1.0"])
    make_wheel(folder, "helperpkg", "1.0")
    make_wheel(folder, "helperpkg", "0.5")
    # "numpy" stands for QGIS's numpy: pip must keep to the running version, never 9.0.
    make_wheel(folder, "arraypkg", "1.0", ["numpy"])
    make_wheel(folder, "numpy", "1.5.0")
    make_wheel(folder, "numpy", "9.0")
    return str(folder)


def offline(wheelhouse):
    return ["--isolated", "--no-index", "--find-links", wheelhouse]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A virtual environment without the system's site-packages (with pip, from Python's
    own bundled wheel: no network), standing for QGIS's Python."""
    folder = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(folder)], check=True,
                   capture_output=True, timeout=300)
    return str(folder / "bin" / "python")


def snapshot(folder):
    """Every file and folder under ``folder`` with its size and mtime."""
    out = {}
    for here, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(here, name)
            st = os.lstat(path)
            out[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns)
    return out


def siblings(folder):
    return sorted(os.listdir(os.path.dirname(folder)))


@pytest.fixture
def installed(tmp_path, fresh_venv, wheelhouse):
    """A private folder in a scratch profile holding tinypkg 1.0 (a previous install)."""
    folder = pip_install.private_folder(str(tmp_path / "profile"))
    result = pip_install.install(fresh_venv, folder, ["tinypkg==1.0"], keep={}, prefer={},
                                 extra_args=offline(wheelhouse))
    return folder, result


# --------------------------------------------------------------------------- (a) which Python


def test_linux_qgis_binary_finds_python3x_in_the_prefix():
    exists = {"/usr/bin/python3.11", "/usr/bin/python3"}.__contains__
    assert pip_install.python_candidates("/usr/bin/qgis", "/usr", "/usr", "linux", (3, 11),
                                         exists) == ["/usr/bin/python3.11", "/usr/bin/python3"]


def test_linux_python_executable_is_used_as_it_is():
    exists = {"/opt/venv/bin/python", "/usr/bin/python3.11"}.__contains__
    assert pip_install.python_candidates("/opt/venv/bin/python", "/opt/venv", "/usr",
                                         "linux", (3, 11), exists)[0] == "/opt/venv/bin/python"


def test_linux_falls_back_to_the_path():
    # An AppImage or a build whose prefix holds no interpreter: python3.X on $PATH.
    exists = {"/usr/local/bin/python3.12", "/usr/bin/python3.11", "/usr/bin/python3"}
    found = pip_install.python_candidates("/tmp/.mount_QGIS/usr/bin/qgis",
                                          "/tmp/.mount_QGIS/usr", "/tmp/.mount_QGIS/usr",
                                          "linux", (3, 11), exists.__contains__,
                                          "/usr/local/bin:/usr/bin")
    assert found == ["/usr/bin/python3.11", "/usr/bin/python3"]  # never the 3.12
    assert pip_install.python_candidates("/usr/bin/qgis", "/usr", "/usr", "linux", (3, 11),
                                         lambda p: False, "/usr/bin") == []


def test_windows_osgeo4w_and_standalone_installer():
    prefix = r"C:\OSGeo4W\apps\Python312"
    exists = {prefix + r"\python.exe", prefix + r"\pythonw.exe", prefix + r"\python3.exe"}
    found = pip_install.python_candidates(r"C:\OSGeo4W\bin\qgis-bin.exe", prefix, prefix,
                                          "win32", (3, 12), exists.__contains__)
    assert found == [prefix + r"\python.exe", prefix + r"\python3.exe"]
    assert not any("pythonw" in p for p in found)
    # The standalone installer: the same layout under Program Files.
    prefix = r"C:\Program Files\QGIS 3.34.4\apps\Python39"
    found = pip_install.python_candidates(r"C:\Program Files\QGIS 3.34.4\bin\qgis-ltr-bin.exe",
                                          prefix, prefix, "win32", (3, 9),
                                          {prefix + r"\python.exe"}.__contains__)
    assert found == [prefix + r"\python.exe"]
    # pythonw (no console streams) is swapped for the python.exe beside it.
    found = pip_install.python_candidates(prefix + r"\pythonw.exe", prefix, prefix, "win32",
                                          (3, 9), {prefix + r"\python.exe"}.__contains__)
    assert found == [prefix + r"\python.exe"]


def test_macos_qgis_app():
    macos = "/Applications/QGIS.app/Contents/MacOS"
    exists = {f"{macos}/bin/python3", f"{macos}/bin/python3.9"}.__contains__
    assert pip_install.python_candidates(f"{macos}/QGIS", macos, macos, "darwin", (3, 9),
                                         exists) == [f"{macos}/bin/python3.9",
                                                     f"{macos}/bin/python3"]
    # A Python.framework inside the bundle as the prefix.
    framework = ("/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.12")
    exists = {f"{framework}/bin/python3.12"}.__contains__
    assert pip_install.python_candidates(f"{macos}/QGIS", framework, framework, "darwin",
                                         (3, 12), exists) == [f"{framework}/bin/python3.12"]


def test_find_python_checks_the_version_and_pip(tmp_path):
    """Found interpreters are run: the wrong major.minor or no pip is a clear error."""
    exe = tmp_path / "bin" / "python3.11"
    exe.parent.mkdir()
    exe.write_text("")
    args = dict(executable=str(tmp_path / "bin" / "qgis"), prefix=str(tmp_path),
                base_prefix=str(tmp_path), platform="linux", version=(3, 11), path="")

    def probe(version, pip):
        return lambda c: pip_install.PythonInfo(c, version, pip)

    with pytest.raises(pip_install.InstallError, match=r"Python 3\.11.*Tried: .*Python 3\.9"):
        pip_install.find_python(probe=probe((3, 9), "23.0"), **args)
    with pytest.raises(pip_install.InstallError, match="has no pip"):
        pip_install.find_python(probe=probe((3, 11), None), **args)
    assert pip_install.find_python(probe=probe((3, 11), "23.0"), **args).path == str(exe)
    with pytest.raises(pip_install.InstallError, match="none of the usual places"):
        pip_install.find_python(**dict(args, prefix="/nonexistent", base_prefix="/nonexist"))


def test_find_python_here_runs_the_candidate():
    """As inside QGIS on Debian: sys.executable is the QGIS program, Python is found in
    the prefix and really run."""
    info = pip_install.find_python(executable="/usr/bin/qgis", prefix="/usr",
                                   base_prefix="/usr", platform="linux", version=PY, path="")
    assert info.path == f"/usr/bin/python{PY[0]}.{PY[1]}" and tuple(info.version) == PY
    assert info.pip


# --------------------------------------------------------------------------- folder, path


def test_private_folder_and_sys_path_order(tmp_path):
    folder = pip_install.private_folder(str(tmp_path / "profiles" / "default"), (3, 12))
    assert folder == str(tmp_path / "profiles" / "default" / "python" / "special_qgis_deps"
                         / "py3.12")
    path = ["/usr/share/qgis/python", "/usr/lib/python311.zip", "/usr/lib/python3.11",
            "/usr/lib/python3.11/lib-dynload", "/usr/local/lib/python3.11/dist-packages",
            "/usr/lib/python3/dist-packages"]
    assert not pip_install.activate(folder, path)  # no folder yet: nothing added
    os.makedirs(folder)
    assert pip_install.activate(folder, path) and pip_install.activate(folder, path)
    # Once, after the standard library and QGIS's own folders, before site-packages.
    assert path.index(folder) == 4 and path.count(folder) == 1


def test_pip_command_and_requirements():
    reqs = pip_install.read_requirements()
    assert [pip_install.requirement_name(r) for r in reqs] == [
        "torch", "torchvision", "open-clip-torch", "rasterio", "affine", "scikit-learn", "tqdm"]
    assert [pip_install.module_of(r) for r in reqs] == [
        "torch", "torchvision", "open_clip", "rasterio", "affine", "sklearn", "tqdm"]
    assert pip_install.needed(reqs, lambda m: m != "sklearn") == [reqs[-2]]
    cmd = pip_install.pip_command("/usr/bin/python3.11", "/t", reqs, "/c.txt")
    assert cmd[:4] == ["/usr/bin/python3.11", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == "/t" and "--user" not in cmd
    assert cmd[cmd.index("--constraint") + 1] == "/c.txt"
    assert cmd[cmd.index("--upgrade-strategy") + 1] == "only-if-needed"
    assert cmd[-len(reqs):] == reqs
    assert "--extra-index-url" in pip_install.pip_command("p", "/t", reqs, cpu_only=True)
    sizes = dict(pip_install.estimate_mb(reqs, "linux"))
    assert sizes[reqs[0]] > 10 * dict(pip_install.estimate_mb(reqs, "linux",
                                                              cpu_only=True))[reqs[0]]
    assert all(mb > 0 for mb in sizes.values())
    assert pip_install.running_versions(["numpy"]) == {
        "numpy": np.__version__.split("+")[0]}


def test_requirements_txt_is_plain_for_qpip(tmp_path):
    """QPIP reads <plugin>/requirements.txt: plain requirement lines, no pip options."""
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as fh:
        lines = [ln.split("#")[0].strip() for ln in fh]
    lines = [ln for ln in lines if ln]
    assert lines and not any(ln.startswith("-") for ln in lines)
    assert all("==" in ln for ln in lines)
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    try:
        import install_plugin
    finally:
        sys.path.remove(os.path.join(REPO, "scripts"))
    with zipfile.ZipFile(install_plugin.package(str(tmp_path / "p.zip"))) as zf:
        names = zf.namelist()
        assert zf.read("special_qgis/requirements.txt").decode().splitlines() == \
            open(os.path.join(REPO, "requirements.txt"), encoding="utf-8").read().splitlines()
    assert "special_qgis/dependency_installer.py" in names
    assert "special_qgis/core/pip_install/__init__.py" in names


def test_pip_output_progress_and_errors():
    out = pip_install.PipOutput(total_mb=1000)
    seen = [out.feed(line) for line in [
        "Collecting torch==2.14.1",
        "  Downloading torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl (800.0 MB)",
        "Collecting rasterio==1.4.4",
        "  Using cached rasterio-1.4.4-cp311-cp311-manylinux_2_28_x86_64.whl (22.1 MB)",
        "Installing collected packages: torch, rasterio",
        "Successfully installed rasterio-1.4.4 torch-2.14.1",
    ]]
    fractions = [s[0] for s in seen if s]
    assert fractions == sorted(fractions) and 0.6 < fractions[2] <= 0.85
    assert seen[1][1].startswith("Downloading torch-2.14.1") and "800.0 MB" in seen[1][1]
    assert seen[4] == (0.9, "Installing 2 packages: torch, rasterio")
    out = pip_install.PipOutput()
    for line in ["Looking in links: /w", "Processing /w/tinypkg-1.0-py3-none-any.whl",
                 "ERROR: Could not find a version that satisfies the requirement nosuchpkg==3.1 "
                 "(from versions: none)", "ERROR: No matching distribution found for "
                 "nosuchpkg==3.1"]:
        out.feed(line)
    assert out.failed_package() == "nosuchpkg==3.1"
    assert out.error_lines()[0].startswith("ERROR: Could not find")


# --------------------------------------------------------------------------- (b) real install


def test_install_into_private_folder_and_import_from_it(tmp_path, fresh_venv, wheelhouse):
    folder = pip_install.private_folder(str(tmp_path / "profile"))
    events = []
    result = pip_install.install(
        fresh_venv, folder, ["tinypkg==1.0", "arraypkg==1.0"], keep={"numpy": "1.5.0"},
        prefer={},
        extra_args=offline(wheelhouse), progress=Progress(lambda f, t: events.append((f, t))))
    assert result.installed == {"tinypkg": "1.0", "helperpkg": "1.0", "arraypkg": "1.0"}
    # numpy: pinned to the "running" version (not 9.0), then left out of the folder.
    assert any("numpy-1.5.0" in line for line in result.log if "Successfully" in line)
    assert not any(n.startswith("numpy") for n in os.listdir(folder))
    assert siblings(folder) == [f"py{PY[0]}.{PY[1]}"]  # no temporary folder left
    assert events[-1] == (1.0, "Done") and any("Installing" in t for _, t in events)

    # The venv's own site-packages holds an older helperpkg: the private folder's wins.
    subprocess.run([fresh_venv, "-m", "pip", "install", *offline(wheelhouse), "-q",
                    "helperpkg==0.5"], check=True, capture_output=True)
    script = (
        "import sys\n"
        f"sys.path.insert(0, {SRC!r})\n"
        "from special_qgis.core.pip_install import activate\n"
        f"assert activate({folder!r})\n"
        "import tinypkg, helperpkg\n"
        "print(tinypkg.__file__)\nprint(helperpkg.__version__)\n")
    out = subprocess.run([fresh_venv, "-c", script], capture_output=True, text=True,
                         check=True, cwd=str(tmp_path))
    tiny_file, helper_version = out.stdout.split()
    assert tiny_file.startswith(folder + os.sep) and helper_version == "1.0"
    # Without the folder, this Python has no tinypkg at all (no system site-packages).
    check = subprocess.run([fresh_venv, "-c", "import tinypkg"], capture_output=True,
                           cwd=str(tmp_path))
    assert check.returncode != 0


def test_qgis_own_versions_are_preferred(tmp_path, fresh_venv, wheelhouse):
    """pip takes the versions QGIS's Python has where they fit, and leaves those out of the
    folder; where they do not fit, it runs again without them."""
    folder = pip_install.private_folder(str(tmp_path / "profile"))
    result = pip_install.install(fresh_venv, folder, ["tinypkg==1.0"], keep={},
                                 prefer={"helperpkg": "1.0", "unrelated": "2.0"},
                                 extra_args=offline(wheelhouse))
    assert result.installed == {"tinypkg": "1.0"}  # QGIS's helperpkg 1.0 serves
    texts = []
    result = pip_install.install(fresh_venv, folder, ["tinypkg==1.0", "arraypkg==1.0"],
                                 keep={}, prefer={"helperpkg": "0.5", "numpy": "1.5.0"},
                                 extra_args=offline(wheelhouse),
                                 progress=Progress(lambda f, t: texts.append(t)))
    # helperpkg 0.5 is too old for tinypkg: only that pin is dropped, QGIS's numpy serves.
    assert result.installed == {"tinypkg": "1.0", "helperpkg": "1.0", "arraypkg": "1.0"}
    assert "QGIS's own helperpkg 0.5 do not fit: pip again without pinning it" in texts
    assert siblings(folder) == [os.path.basename(folder)]
    found = pip_install.environment_versions(path=sys.path)
    assert found["numpy"] == np.__version__.split("+")[0]


def test_reinstall_replaces_the_folder(installed, fresh_venv, wheelhouse):
    folder, _ = installed
    result = pip_install.install(fresh_venv, folder, ["arraypkg"], keep={"numpy": "1.5.0"},
                                 prefer={}, extra_args=offline(wheelhouse))
    assert result.installed == {"arraypkg": "1.0"}
    assert "tinypkg" not in os.listdir(folder)  # the folder is what the last install made
    assert siblings(folder) == [os.path.basename(folder)]


# --------------------------------------------------------------------------- (c) failure


def test_missing_wheel_is_named_and_changes_nothing(installed, fresh_venv, wheelhouse):
    folder, _ = installed
    before = snapshot(folder)
    with pytest.raises(pip_install.InstallError) as err:
        pip_install.install(fresh_venv, folder, ["tinypkg==1.0", "nosuchpkg==3.1"], keep={},
                            prefer={}, extra_args=offline(wheelhouse))
    message = str(err.value)
    assert message.startswith("pip could not install nosuchpkg==3.1 (exit code 1)")
    assert "No matching distribution found for nosuchpkg==3.1" in message
    assert "Nothing was changed in " + folder in message
    with pytest.raises(pip_install.InstallError, match=r"(?s)tinypkg==7\.0.*from versions: "
                                                        r"1\.0"):
        pip_install.install(fresh_venv, folder, ["tinypkg==7.0"], keep={}, prefer={},
                            extra_args=offline(wheelhouse))
    assert snapshot(folder) == before
    assert siblings(folder) == [os.path.basename(folder)]


# --------------------------------------------------------------------------- (d) cancel


def _pip_processes_with(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def test_cancel_kills_pip_and_changes_nothing(installed, fresh_venv, wheelhouse):
    folder, _ = installed
    before = snapshot(folder)
    lines = []

    def log(line):  # cancel as soon as pip has started working
        lines.append(line)

    started = time.monotonic()
    with pytest.raises(Cancelled):
        pip_install.install(fresh_venv, folder, ["arraypkg==1.0"], keep={"numpy": "1.5.0"},
                            prefer={}, extra_args=offline(wheelhouse),
                            progress=Progress(cancelled=lambda: bool(lines), log=log))
    assert time.monotonic() - started < 60
    assert lines and not any("Successfully installed" in ln for ln in lines)
    assert snapshot(folder) == before
    assert siblings(folder) == [os.path.basename(folder)]
    assert _pip_processes_with(f".{os.path.basename(folder)}-new-") == []  # pip is gone


def test_recover_after_a_crash_between_the_renames(installed):
    folder, _ = installed
    parent = os.path.dirname(folder)
    old = os.path.join(parent, f".{os.path.basename(folder)}-old-x")
    os.rename(folder, old)
    os.makedirs(os.path.join(parent, f".{os.path.basename(folder)}-new-y", "half"))
    pip_install.recover(folder)
    assert siblings(folder) == [os.path.basename(folder)]
    assert "tinypkg" in os.listdir(folder)


def test_needs_restart(installed):
    """A restart is asked for only when this session loaded a version the new packages
    cannot use (tinypkg needs helperpkg>=1.0), or a package is half-imported."""
    folder, result = installed
    assert pip_install.needs_restart(folder, result.installed, modules={"os": os}) == []

    def loaded(version):
        return type("Module", (), {"__version__": version})()

    stale = pip_install.needs_restart(folder, result.installed,
                                      modules={"helperpkg": loaded("0.5"),
                                               "tinypkg.sub": object()})
    assert stale == ["helperpkg (loaded: 0.5, installed: 1.0)", "tinypkg (partly imported)"]
    assert pip_install.needs_restart(folder, result.installed,
                                     modules={"helperpkg": loaded("1.5")}) == []


def test_satisfies():
    assert pip_install.satisfies("1.11.1", ">=1.13.3") is False
    assert pip_install.satisfies("1.14.0", ">=1.13.3")
    assert pip_install.satisfies("8.1.7", "!=8.2.*,>=4.0")
    assert pip_install.satisfies("8.2.1", "!=8.2.*,>=4.0") is False
    assert pip_install.satisfies("2.17.0", "==2.17.0") and pip_install.satisfies("3.3", "")
    assert pip_install.satisfies("2.5", "~=2.2") and not pip_install.satisfies("3.0", "~=2.2")
    assert pip_install.satisfies("1.0", "@ weird") is None


# --------------------------------------------------------------------------- (e) QGIS side


def _buttons(widget):
    from qgis.PyQt.QtWidgets import QPushButton

    return [b for b in widget.findChildren(QPushButton)]


def test_message_bar_offers_the_installer(qgis_iface, monkeypatch):
    from qgis.core import QgsApplication

    from special_qgis import dependency_installer
    from special_qgis.processing_provider import provider

    monkeypatch.setattr(provider, "_reported", set())
    bar = qgis_iface.messageBar()
    bar.clearWidgets()
    provider._report_missing(["torch", "open_clip"])
    item = bar.currentItem()
    assert item is not None and "torch, open_clip_torch" in item.text()
    buttons = [b for b in _buttons(item) if b.text() == "Install dependencies…"]
    assert len(buttons) == 1
    buttons[0].click()  # opens the dialog (nothing is installed until its Install)
    dialog = dependency_installer._state["dialog"]
    try:
        assert dialog is not None and dialog.isVisible()
        assert dialog.folder == pip_install.private_folder(
            QgsApplication.qgisSettingsDirPath())
        assert dialog.folder.startswith(os.environ["QGIS_CUSTOM_CONFIG_PATH"])
        assert dialog.task is None
    finally:
        dialog.close()
        dependency_installer._state["dialog"] = None
        bar.clearWidgets()


def test_dialog_says_what_and_where(qgis_app, tmp_path):
    from special_qgis.dependency_installer import InstallDialog

    folder = str(tmp_path / "deps" / "py3.11")
    reqs = pip_install.read_requirements()
    dialog = InstallDialog(requirements=reqs, folder=folder)
    try:
        assert folder in dialog.where.text()
        assert dialog.table.rowCount() == len(reqs)
        assert [dialog.table.item(r, 0).text() for r in range(len(reqs))] == reqs
        assert all(dialog.table.item(r, 1).text().endswith(" MB") for r in range(len(reqs)))
        total = dialog.total.text()
        assert "MB to download" in total and "estimate" in total
        assert "QGIS's Python" in dialog.python_label.text()
        assert dialog.install_button.isEnabled() and not dialog.cancel_button.isEnabled()
        full = total
        dialog.cpu_only.setChecked(True)  # Linux: the CPU-only torch is far smaller
        assert dialog.total.text() != full
        assert not os.path.exists(folder)  # constructing it installs nothing
    finally:
        dialog.close()


def _wait(task, seconds=120):
    from qgis.PyQt.QtCore import QCoreApplication

    done = []
    task.done.connect(lambda ok, message: done.append((ok, message)))
    deadline = time.monotonic() + seconds
    while not done and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    assert done, "the task did not finish"
    return done[0]


def test_task_installs_and_activates(qgis_app, tmp_path, wheelhouse):
    """The background task, for real (QGIS's task manager, pip offline): the folder goes
    on sys.path and the package imports in this session without a restart."""
    from qgis.core import QgsApplication

    from special_qgis.dependency_installer import InstallTask

    python = pip_install.find_python().path
    folder = pip_install.private_folder(str(tmp_path / "profile"))
    task = InstallTask(python, folder, ["tinypkg==1.0"], pip_args=offline(wheelhouse))
    statuses = []
    task.status.connect(lambda f, t: statuses.append(t))
    QgsApplication.taskManager().addTask(task)
    try:
        ok, message = _wait(task)
        assert ok, message
        assert "no restart needed" in message and folder in message
        assert folder in sys.path
        import tinypkg

        assert tinypkg.__file__.startswith(folder + os.sep)
        assert any(t.startswith("Installing") for t in statuses)
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
        for name in ("tinypkg", "helperpkg"):
            sys.modules.pop(name, None)


def test_task_cancel_changes_nothing(qgis_app, tmp_path, wheelhouse):
    from qgis.core import QgsApplication

    from special_qgis.dependency_installer import InstallTask

    python = pip_install.find_python().path
    folder = pip_install.private_folder(str(tmp_path / "profile"))
    task = InstallTask(python, folder, ["tinypkg==1.0"], pip_args=offline(wheelhouse))
    task.line.connect(lambda line: task.cancel())  # cancel once pip talks
    QgsApplication.taskManager().addTask(task)
    ok, message = _wait(task)
    assert not ok and task.cancelled and message.startswith("Cancelled")
    assert not os.path.exists(folder)
    assert os.listdir(os.path.dirname(folder)) == []


AFTER_INSTALL = r'''
import json, sys
sys.path.insert(0, sys.argv[2])
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
sys.path.append("/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing
Processing.initialize()
from special_qgis.processing_provider.provider import SpecialProvider
provider = SpecialProvider()
QgsApplication.processingRegistry().addProvider(provider)
before = sorted(type(a).__name__ for a in provider.algorithms())
from special_qgis.core.pip_install import InstallResult
from special_qgis.dependency_installer import after_install
message, restart = after_install(InstallResult(sys.argv[1], {}, 0.0))
algs = QgsApplication.processingRegistry().providerById("special").algorithms()
after = sorted(type(a).__name__ for a in algs)
ok = all(a.canExecute()[0] for a in algs)
print("RESULT" + json.dumps([before, after, ok, message, restart]))
'''


def test_after_install_replaces_unavailable_algorithms(tmp_path):
    """Debian's own Python (QGIS's, without the project's venv) has no rasterio: every
    algorithm is unavailable. Once a folder with the packages is installed, after_install
    puts it on sys.path and reloads the provider: the real algorithms, no restart."""
    site = os.path.join(REPO, ".venv", "lib", f"python{PY[0]}.{PY[1]}", "site-packages")
    probe = subprocess.run(["/usr/bin/python3", "-c", "import qgis.core, rasterio"],
                           capture_output=True)
    if probe.returncode == 0 or not os.path.isdir(site):
        pytest.skip("needs Debian's Python with QGIS and without rasterio, and .venv")
    folder = tmp_path / "deps"  # the venv's packages, without their metadata
    folder.mkdir()
    for name in os.listdir(site):
        if not name.endswith((".dist-info", ".pth")) and name not in ("__pycache__",
                                                                      "special_qgis"):
            os.symlink(os.path.join(site, name), folder / name)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)
    out = subprocess.run(["/usr/bin/python3", "-c", AFTER_INSTALL, str(folder), SRC],
                         capture_output=True, text=True, timeout=300, env=env)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert lines, out.stdout[-3000:] + out.stderr[-3000:]
    before, after, ok, message, restart = json.loads(lines[-1][6:])
    assert set(before) == {"UnavailableAlgorithm"}
    assert "UnavailableAlgorithm" not in after and len(after) == len(before) and ok
    assert not restart and "no restart needed" in message


def test_plugin_menu_opens_the_installer(qgis_iface):
    """Plugins ▸ SPECIAL hyperspectral ▸ Install dependencies…: there after the message-bar
    item is gone, and it opens the same dialog."""
    from special_qgis import dependency_installer
    from special_qgis.plugin import SpecialPlugin

    plugin = SpecialPlugin(qgis_iface)
    plugin.initGui()
    try:
        action = plugin.install_action
        assert action.text() == "Install dependencies…"
        action.trigger()
        dialog = dependency_installer._state["dialog"]
        assert dialog is not None and dialog.isVisible() and dialog.task is None
        dialog.close()
        dependency_installer._state["dialog"] = None
    finally:
        if plugin.provider is not None:
            from qgis.core import QgsApplication

            QgsApplication.processingRegistry().removeProvider(plugin.provider)
            plugin.provider = None
