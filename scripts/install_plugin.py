#!/usr/bin/env python3
r"""Install the special_qgis plugin into a QGIS profile and enable it.

  --link DIR     symlink the repository's special_qgis/ into DIR's default profile
                 (the developer set-up used by make install; edits take effect at once)
  --copy DIR     copy a self-contained plugin folder (special_qgis/ with core/ and
                 processing_provider/ inside, as in the plugin ZIP) into DIR's profile
  --build DIR    only build that self-contained folder at DIR/special_qgis
  --zip FILE     build it and pack it as the plugin ZIP (one top folder, special_qgis/,
                 as QGIS's "Install from ZIP" and plugins.qgis.org expect); make package

DIR is a QGIS profiles root: the one QGIS_CUSTOM_CONFIG_PATH points at, or a user's
normal one: ~/.local/share/QGIS/QGIS3 (QGIS 4: .../QGIS4) on Linux,
%APPDATA%\QGIS\QGIS3 on Windows, ~/Library/Application Support/QGIS/QGIS3 on macOS.
The plugin is enabled in the settings file of each QGIS major version the root serves:
QGIS3.ini in a QGIS3 root, QGIS4.ini in a QGIS4 root, both in a custom root.
"""

import argparse
import configparser
import os
import shutil
import sys
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "special_qgis"
# Never shipped: caches, hidden files (.pytest_cache, .ruff_cache, editor files), tests,
# and what running GDAL/QGIS on a file beside the sources leaves there (*.aux.xml, *.qml).
IGNORE = shutil.ignore_patterns("__pycache__", "*.py[co]", ".*", "tests", "*.aux.xml",
                                "*.qml", "*~")


def build(dest_root: str) -> str:
    """Assemble the plugin folder as QGIS expects it: one folder, everything inside."""
    dest = os.path.join(dest_root, NAME)
    if os.path.islink(dest) or os.path.isfile(dest):
        os.remove(dest)
    elif os.path.isdir(dest):
        shutil.rmtree(dest)
    # symlinks=False copies what a link points at: in the repository special_qgis/ links
    # core/, processing_provider/, metadata.txt and requirements.txt from the top level,
    # and the plugin must hold real folders and files.
    shutil.copytree(os.path.join(REPO, NAME), dest, ignore=IGNORE, symlinks=False)
    for extra in ("LICENSE", "README.md"):
        if os.path.exists(os.path.join(REPO, extra)):
            shutil.copy2(os.path.join(REPO, extra), dest)
    return dest


def package(zip_path: str) -> str:
    """The plugin ZIP: build() in a scratch folder, packed under one top folder special_qgis/."""
    zip_path = os.path.abspath(zip_path)
    os.makedirs(os.path.dirname(zip_path), exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = build(scratch)
        partial = zip_path + ".partial"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for here, dirs, files in os.walk(folder):
                dirs.sort()
                rel = os.path.relpath(here, scratch)
                zf.write(here, rel)  # directory entries too: some unzip tools want them
                for name in sorted(files):
                    zf.write(os.path.join(here, name), os.path.join(rel, name))
        os.replace(partial, zip_path)
    return zip_path


def settings_files(profiles_root: str) -> list:
    """The default profile's settings files: QGIS names them after its major version."""
    base = os.path.basename(os.path.normpath(profiles_root))
    names = [f"{base}.ini"] if base in ("QGIS3", "QGIS4") else ["QGIS3.ini", "QGIS4.ini"]
    return [os.path.join(profiles_root, "profiles", "default", "QGIS", n) for n in names]


def enable(profiles_root: str) -> None:
    """Set [PythonPlugins] special_qgis=true in the profile's settings file(s)."""
    for ini in settings_files(profiles_root):
        os.makedirs(os.path.dirname(ini), exist_ok=True)
        config = configparser.RawConfigParser()
        config.optionxform = str  # QSettings keys are case-sensitive
        config.read(ini)
        if not config.has_section("PythonPlugins"):
            config.add_section("PythonPlugins")
        config.set("PythonPlugins", NAME, "true")
        with open(ini, "w") as fh:
            config.write(fh, space_around_delimiters=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--link", metavar="DIR")
    group.add_argument("--copy", metavar="DIR")
    group.add_argument("--build", metavar="DIR")
    group.add_argument("--zip", metavar="FILE")
    args = parser.parse_args()

    if args.zip:
        print(package(args.zip))
        return 0
    if args.build:
        os.makedirs(args.build, exist_ok=True)
        print(build(args.build))
        return 0
    root = os.path.abspath(args.link or args.copy)
    plugins = os.path.join(root, "profiles", "default", "python", "plugins")
    os.makedirs(plugins, exist_ok=True)
    if args.link:
        target = os.path.join(plugins, NAME)
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
        os.symlink(os.path.join(REPO, NAME), target)
    else:
        build(plugins)
    enable(root)
    print(f"special_qgis installed and enabled in {root}/profiles/default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
