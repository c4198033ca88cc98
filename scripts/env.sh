# Sourced by the wrappers in scripts/: the project's venv and isolated QGIS profile.
SPECIAL_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPECIAL_VENV="$SPECIAL_REPO/.venv"
if [ ! -x "$SPECIAL_VENV/bin/python" ]; then
    echo "special_qgis: no virtual environment at $SPECIAL_VENV; run 'make install' first." >&2
    exit 1
fi
SPECIAL_SITE="$("$SPECIAL_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# QGIS embeds Debian's Python, not the venv: give it the venv's packages.
export PYTHONPATH="$SPECIAL_SITE${PYTHONPATH:+:$PYTHONPATH}"
export QGIS_CUSTOM_CONFIG_PATH="${QGIS_CUSTOM_CONFIG_PATH:-$SPECIAL_REPO/.qgis-profile}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$QGIS_CUSTOM_CONFIG_PATH/runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
