"""Running pip: its command line and constraints file, reading its output (progress,
errors, the pins it failed on), and killing it on cancel."""

from __future__ import annotations

import collections
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Optional

from ..progress import Progress, as_progress
from .python import _creationflags
from .requirements import requirement_name

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def pip_command(python: str, target: str, requirements: Sequence[str],
                constraints_file: Optional[str] = None, cpu_only: bool = False,
                extra_args: Sequence[str] = ()) -> list[str]:
    """The pip command line that installs ``requirements`` into ``target``."""
    cmd = [python, "-m", "pip", "install", "--target", target, "--no-input",
           "--disable-pip-version-check", "--no-warn-script-location", "--progress-bar",
           "off", "--prefer-binary", "--upgrade-strategy", "only-if-needed"]
    if constraints_file:
        cmd += ["--constraint", constraints_file]
    if cpu_only:
        cmd += ["--extra-index-url", CPU_TORCH_INDEX]
    return cmd + list(extra_args) + list(requirements)


# --------------------------------------------------------------------------- its output

_SIZE = re.compile(r"\(([\d.]+)\s*([kMG]B)\)")
_UNITS = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}
_FAILED_NAME = (
    re.compile(r"No matching distribution found for ([^\s;]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s;]+)"),
    re.compile(r"Cannot install (.+?)(?: because|$)"),
    re.compile(r"Failed (?:to build|building wheel for) ([^\s;]+)"),
)


class PipOutput:
    """Turns pip's output lines into a coarse progress (downloads weighed by size against
    the estimate, then installing) and keeps the last lines for an error message."""

    def __init__(self, total_mb: float = 0.0) -> None:
        self.total_mb = max(float(total_mb), 1.0)
        self.done_mb = 0.0
        self._pending_mb = 0.0
        self.lines: collections.deque[str] = collections.deque(maxlen=60)
        self.fraction = 0.0
        self.text = "Starting pip"
        self.collected: list[str] = []

    def feed(self, line: str) -> Optional[tuple[float, str]]:
        """One line of pip's output; (fraction, status text) when the status changed."""
        line = line.rstrip()
        if not line.strip():
            return None
        self.lines.append(line)
        stripped = line.strip()
        self.done_mb += self._pending_mb  # the previous download finished
        self._pending_mb = 0.0
        text = None
        if stripped.startswith("Collecting "):
            name = stripped[len("Collecting "):].split(" (from", 1)[0]
            self.collected.append(name)
            text = f"Collecting {name}"
        elif stripped.startswith(("Downloading ", "Using cached ")):
            size = _SIZE.search(stripped)
            if size:
                self._pending_mb = float(size.group(1)) * _UNITS[size.group(2)]
            what = os.path.basename(stripped.split()[1 if stripped[0] == "D" else 2])
            text = f"Downloading {what}" + (f" ({size.group(1)} {size.group(2)})"
                                            if size else "")
        elif stripped.startswith("Processing "):
            text = f"Unpacking {os.path.basename(stripped.split(None, 1)[1])}"
        elif m := re.match(r"Progress (\d+) of (\d+)", stripped):  # pip >= 24.1 raw bar
            self.fraction = max(self.fraction, min(0.85, 0.85 * (
                self.done_mb + int(m.group(1)) / 1e6) / self.total_mb))
            return self.fraction, self.text
        elif stripped.startswith("Installing collected packages:"):
            names = [n.strip() for n in stripped.split(":", 1)[1].split(",") if n.strip()]
            self.fraction = 0.9
            shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
            self.text = f"Installing {len(names)} packages: {shown}"
            return self.fraction, self.text
        elif stripped.startswith("Successfully installed"):
            self.fraction = 0.97
            self.text = "Installed; moving into place"
            return self.fraction, self.text
        elif stripped.startswith("ERROR:"):
            return None  # kept for the error message; pip may yet run again
        if text is None:
            return None
        self.fraction = max(self.fraction, min(0.85, 0.85 * self.done_mb / self.total_mb))
        self.text = text
        return self.fraction, self.text

    def error_lines(self, count: int = 12) -> list[str]:
        """pip's last lines from its first ERROR line on (at most ``count``)."""
        lines = list(self.lines)
        first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ERROR:")),
                     max(0, len(lines) - count))
        return [ln for ln in lines[first:] if ln.strip()][-count:]

    def failed_package(self) -> Optional[str]:
        for line in self.lines:
            for pattern in _FAILED_NAME:
                m = pattern.search(line)
                if m:
                    return m.group(1).rstrip(".,:")
        return None


def _kill(proc: subprocess.Popen) -> None:
    """Stop pip and what it started (a build backend, say)."""
    if proc.poll() is not None:
        return
    try:
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)],
                           capture_output=True, creationflags=_creationflags())
        else:
            os.killpg(proc.pid, signal.SIGTERM)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        if sys.platform != "win32":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        proc.kill()
        proc.wait(timeout=10)


def run_pip(cmd: Sequence[str], output: PipOutput, progress: Optional[Progress] = None,
            env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None) -> int:
    """Run pip, feeding its lines to ``output`` and ``progress``; kill it and raise
    ``Cancelled`` as soon as ``progress`` says the user cancelled."""
    progress = as_progress(progress)
    full_env = dict(os.environ if env is None else env)
    full_env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1",
                    PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore")
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                            encoding="utf-8", errors="replace",
                            start_new_session=sys.platform != "win32",
                            creationflags=_creationflags(new_group=True))
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            progress.check()
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            progress.log_lines([line.rstrip()] if line.strip() else [])
            status = output.feed(line)
            if status is not None:
                progress.update(*status)
        return proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def _write_constraints(path: str, pins: Mapping[str, str]) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    return path


_CONSTRAINT = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9_.\-]+)\s*==")


def _pins_in_the_way(output: PipOutput, pins: Mapping[str, str]) -> Optional[set]:
    """Which of ``pins`` pip failed on (a conflict with them, or a pinned version it
    could not find); an empty set for a conflict it names no pin of; None when pip failed
    on something else (what was asked for)."""
    culprits = {requirement_name(m.group(1)) for line in output.lines
                for m in [_CONSTRAINT.search(line)] if m}
    failed = output.failed_package()
    if failed:
        culprits.add(requirement_name(failed))
    culprits &= set(pins)
    if culprits:
        return culprits
    text = "\n".join(output.lines)
    if "ResolutionImpossible" in text or "conflicting dependencies" in text:
        return set()
    return None
