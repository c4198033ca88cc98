"""QGIS Processing provider ``special``: thin wrappers that call ``special_qgis.core``."""
