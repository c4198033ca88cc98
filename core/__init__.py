"""QGIS-free engine of special_qgis.

Import it as ``special_qgis.core``: the three source folders of the repository
(``special_qgis/``, ``core/``, ``processing_provider/``) form one package named
``special_qgis`` (see the README, "Developing"). Nothing under ``core`` may import
``qgis``; a test enforces it.
"""
