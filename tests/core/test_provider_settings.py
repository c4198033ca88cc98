"""The provider settings' value checks, which need no QGIS (processing_provider/settings.py
imports none at module level). The settings in QGIS and qgis_process:
tests/processing/test_settings.py."""

import pytest

from special_qgis.processing_provider import settings as plugin_settings


def test_bad_threads_value_is_refused():
    with pytest.raises(ValueError, match="whole number"):
        plugin_settings._non_negative("-2")
