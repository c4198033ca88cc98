"""The message bar's **Install dependencies…** button, its dialog and the background task
that runs pip. Thin: what is installed where, and how, is decided in
``core/pip_install/`` (QGIS-free).

Only scoped Qt/QGIS enums here (``Qgis.MessageLevel.Warning``): QGIS 4 (PyQt6) has no
unscoped ones.
"""

from __future__ import annotations

import sys
from typing import Optional

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from .core import dependencies, pip_install
from .core.errors import Cancelled
from .core.progress import Progress
from .plugin import activate_private_packages, private_packages_folder

TAG = "SPECIAL hyperspectral"
BUTTON_TEXT = "Install dependencies…"
# Python references: Qt does not keep the Python objects of a task or a dialog alive.
_state = {"dialog": None, "task": None, "bar_item": None}


def requirements_to_install(folder: Optional[str] = None) -> list:
    """The pinned lines of requirements.txt whose package QGIS's Python lacks without the
    private folder: what the folder must hold."""
    folder = private_packages_folder() if folder is None else folder
    return pip_install.needed(pip_install.read_requirements(),
                              lambda module: pip_install.importable_without(module, folder))


# --------------------------------------------------------------------------- message bar


def push_missing_message(iface, absent) -> object:
    """A warning in the message bar naming the missing packages, with the button that
    opens the install dialog. Returns the bar's item."""
    names = ", ".join(dependencies.PACKAGES.get(m, m) for m in absent)
    bar = iface.messageBar()
    item = bar.createMessage(TAG, f"Missing Python package(s): {names}. Some algorithms "
                                  f"cannot run until they are installed (the Log Messages "
                                  f"panel has the pip command to do it by hand).")
    button = QPushButton(BUTTON_TEXT, item)
    button.setObjectName("special_qgis_install_dependencies")
    button.clicked.connect(lambda *_: open_dialog(iface))
    item.layout().addWidget(button)
    bar.pushWidget(item, Qgis.MessageLevel.Warning, 0)
    _state["bar_item"] = item
    return item


def open_dialog(iface=None) -> InstallDialog:
    parent = iface.mainWindow() if iface is not None else None
    dialog = _state["dialog"]
    if dialog is None or (_state["task"] is None and not dialog.isVisible()):
        dialog = InstallDialog(parent, iface=iface)
        _state["dialog"] = dialog
    dialog.show()
    dialog.raise_()
    return dialog


# --------------------------------------------------------------------------- the task


class InstallTask(QgsTask):
    """pip in a background thread (core/pip_install.install); Cancel kills pip."""

    status = pyqtSignal(float, str)
    line = pyqtSignal(str)
    done = pyqtSignal(bool, str)

    def __init__(self, python: str, folder: str, requirements, cpu_only: bool = False,
                 pip_args=(), total_mb: Optional[float] = None) -> None:
        super().__init__("Installing Python packages for SPECIAL hyperspectral",
                         QgsTask.Flag.CanCancel)
        self.python, self.folder, self.requirements = python, folder, list(requirements)
        self.cpu_only, self.pip_args, self.total_mb = cpu_only, list(pip_args), total_mb
        self.outcome = None  # core's InstallResult
        self.error = None
        self.message = ""
        self.restart = False
        self.cancelled = False

    def _report(self, fraction: float, text: str) -> None:
        self.setProgress(100.0 * fraction)
        self.status.emit(fraction, text)

    def run(self) -> bool:  # worker thread: no widgets here
        progress = Progress(self._report, self.isCanceled, log=self.line.emit)
        try:
            self.outcome = pip_install.install(
                self.python, self.folder, self.requirements, cpu_only=self.cpu_only,
                extra_args=self.pip_args, total_mb=self.total_mb, progress=progress)
            return True
        except Cancelled:
            self.cancelled = True
            self.error = (f"Cancelled: pip was stopped and nothing was changed in "
                          f"{self.folder}.")
        except pip_install.InstallError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 (told to the user, never lost)
            self.error = f"The installation failed: {type(exc).__name__}: {exc}"
        return False

    def level(self):
        if self.outcome is not None and not self.restart:
            return Qgis.MessageLevel.Success
        if self.outcome is not None or self.cancelled:
            return Qgis.MessageLevel.Warning
        return Qgis.MessageLevel.Critical

    def finished(self, result: bool) -> None:  # main thread
        if result:
            self.message, self.restart = after_install(self.outcome)
        else:
            self.cancelled = self.cancelled or self.error is None
            self.message = self.error or "Cancelled: nothing was changed."
        QgsMessageLog.logMessage(self.message, TAG, self.level())
        self.done.emit(result, self.message)
        if _state["task"] is self:
            _state["task"] = None


def after_install(outcome) -> tuple:
    """Make the new packages usable in this session where possible: the folder goes on
    sys.path (caches invalidated), the provider reloads its algorithms (UnavailableAlgorithm
    entries are replaced). (message, restart needed)."""
    folder = outcome.folder
    if folder == private_packages_folder():
        activate_private_packages()
    else:
        pip_install.activate(folder)
    stale = pip_install.needs_restart(folder, outcome.installed)
    problem = ""
    provider = QgsApplication.processingRegistry().providerById("special")
    if provider is not None and not stale:
        try:
            provider.refreshAlgorithms()
        except Exception as exc:  # noqa: BLE001
            problem = f" Reloading the algorithms failed ({type(exc).__name__}: {exc})."
    absent = dependencies.missing(sorted(set(dependencies.CLIP + dependencies.NETWORK)))
    installed = f"Installed {len(outcome.installed)} Python packages " \
                f"({outcome.size_mb:.0f} MB) into {folder}."
    if stale or absent or problem:
        why = (f" This session already loaded other versions of: {', '.join(stale)}."
               if stale else "")
        if absent:
            why += f" Not importable yet: {', '.join(absent)}."
        return f"{installed}{why}{problem} Restart QGIS to use them.", True
    item = _state["bar_item"]
    if item is not None:
        try:
            from qgis.utils import iface

            if iface is not None:
                iface.messageBar().popWidget(item)
        except (ImportError, RuntimeError):
            pass
        _state["bar_item"] = None
    return f"{installed} The SPECIAL algorithms are ready; no restart needed.", False


# --------------------------------------------------------------------------- the dialog


class InstallDialog(QDialog):
    """Says what will be downloaded (pinned packages, an estimate in MB) and where it goes,
    runs the install as a background task with progress, and can cancel it."""

    def __init__(self, parent=None, iface=None, requirements=None, folder=None,
                 python=None, pip_args=()) -> None:
        super().__init__(parent)
        self.iface = iface
        self.folder = private_packages_folder() if folder is None else folder
        self.requirements = (requirements_to_install(self.folder) if requirements is None
                             else list(requirements))
        self.pip_args = list(pip_args)
        self.task = None
        self.python_error = None
        if python is None:
            try:
                python = pip_install.find_python()
            except pip_install.InstallError as exc:
                self.python_error = str(exc)
        self.python = python
        self.setWindowTitle("Install Python packages for SPECIAL hyperspectral")
        self.setMinimumWidth(620)
        self.resize(720, 620)  # every package row in view, without scrolling
        layout = QVBoxLayout(self)

        self.intro = self._label(
            "These Python packages will be downloaded from the Python Package Index "
            "(pypi.org, or the index your pip configuration names) and installed for the "
            "Python that QGIS runs, into a folder of your QGIS profile that only this plugin "
            "uses. Nothing is installed into the system's Python or your user site-packages; "
            "delete the folder to remove them again." if self.requirements else
            "Every Python package the plugin needs can already be imported: nothing to "
            "install.")
        layout.addWidget(self.intro)

        self.table = QTableWidget(len(self.requirements), 2, self)
        self.table.setHorizontalHeaderLabels(["Package (pinned)", "Download (about)"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table)

        torch_mb = pip_install.DOWNLOAD_MB["torch"]
        self.cpu_only = QCheckBox(
            f"CPU-only PyTorch: about {torch_mb['linux-cpu']:,} MB instead of "
            f"{torch_mb['linux']:,} MB, but no GPU", self)
        self.cpu_only.setToolTip("From download.pytorch.org's CPU index, without NVIDIA's "
                                 "CUDA libraries.")
        self.cpu_only.setVisible(sys.platform.startswith("linux") and any(
            pip_install.requirement_name(r) == "torch" for r in self.requirements))
        self.cpu_only.toggled.connect(self._estimate)
        layout.addWidget(self.cpu_only)
        self.total = self._label("")
        layout.addWidget(self.total)

        self.where = self._label(f"Installed into: {self.folder}")
        layout.addWidget(self.where)
        if self.python is not None:
            pip_version = f", pip {self.python.pip}" if self.python.pip else ""
            python_text = (f"With QGIS's Python: {self.python.path} (Python "
                           f"{self.python.version[0]}.{self.python.version[1]}{pip_version})")
        else:
            python_text = self.python_error
        self.python_label = self._label(python_text)
        layout.addWidget(self.python_label)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = self._label("")
        layout.addWidget(self.status)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("pip's output")
        self.log.setVisible(False)
        layout.addWidget(self.log)

        self.buttons = QDialogButtonBox(self)
        self.install_button = self.buttons.addButton(
            "Install", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.cancel_button.setEnabled(False)
        self.install_button.setEnabled(bool(self.requirements) and self.python is not None)
        self.install_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        layout.addWidget(self.buttons)
        self._estimate()

    def _label(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def estimates(self) -> list:
        return pip_install.estimate_mb(self.requirements, cpu_only=self.cpu_only.isChecked())

    def _estimate(self, *_) -> None:
        rows = self.estimates()
        for row, (req, mb) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(req))
            size = QTableWidgetItem(f"{mb:,} MB")
            size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 1, size)
        total = sum(mb for _, mb in rows)
        disk = total * pip_install.DISK_FACTOR
        self.total.setText(
            f"About {total:,} MB to download in all, and about {disk:,.0f} MB of disk space. "
            f"These are estimates: pip reuses what it has cached and leaves out what QGIS's "
            f"Python already has." if rows else "")

    def start(self) -> None:
        if self.task is not None or self.python is None or not self.requirements:
            return
        rows = self.estimates()
        self.task = InstallTask(self.python.path, self.folder, self.requirements,
                                cpu_only=self.cpu_only.isChecked(), pip_args=self.pip_args,
                                total_mb=sum(mb for _, mb in rows))
        self.task.status.connect(self._on_status)
        self.task.line.connect(self._on_line)
        self.task.done.connect(self._on_done)
        _state["task"] = self.task
        self.install_button.setEnabled(False)
        self.cpu_only.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.log.setVisible(True)
        self.status.setText("Starting pip…")
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self) -> None:
        if self.task is not None:
            self.status.setText("Cancelling: stopping pip…")
            self.task.cancel()
        else:
            self.reject()

    def _on_status(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(round(100 * fraction)))
        self.status.setText(text)

    def _on_line(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _on_done(self, ok: bool, message: str) -> None:
        task, self.task = self.task, None
        self.cancel_button.setEnabled(False)
        self.status.setText(message)
        if ok:
            self.progress.setValue(100)
        else:
            self.install_button.setEnabled(True)
            self.cpu_only.setEnabled(True)
        if self.iface is not None and task is not None:
            self.iface.messageBar().pushMessage(TAG, message.splitlines()[0], task.level(),
                                                0 if task.restart or not ok else 10)
