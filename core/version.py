"""special_qgis's version. Its only copy is metadata.txt's ``version=`` (QGIS reads it
there); this reads it from beside ``core/``, where it sits in the repository and in the
plugin folder alike. Standard library only: cheap to import at plugin load."""

import configparser
import os

METADATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "metadata.txt")


def software_version() -> str:
    """special_qgis's version from metadata.txt, or 'unknown'."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(METADATA, encoding="utf-8")
        return parser.get("general", "version")
    except (configparser.Error, OSError):
        return "unknown"
