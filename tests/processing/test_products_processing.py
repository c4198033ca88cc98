"""Products through QGIS: picked as INPUT in Processing and qgis_process (PRISMA .he5 and
EMIT .nc, which QGIS cannot load as one layer, included), special:importproduct, the
log naming the bad bands, nothing written beside the product, and an imported product
classified on the product's grid."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from products import (
    assert_grid,
    expected_rgb,
    snapshot,
    write_emit_l2a,
    write_enmap_l2a,
    write_prisma_l2d,
)


class Log:
    """A QgsProcessingFeedback that keeps what the algorithm logs."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []

            def pushInfo(self, info):  # noqa: N802
                self.lines.append(info)
                super().pushInfo(info)

        return Feedback()


@pytest.mark.parametrize("writer", [write_prisma_l2d, write_emit_l2a])
def test_hdf5_products_as_input(provider, tmp_path, writer):
    import processing

    product = writer(str(tmp_path / "download"))
    before = snapshot(tmp_path / "download")
    out = str(tmp_path / "rgb.tif")
    feedback = Log()
    processing.run("special:pseudorgb", {"INPUT": product.path, "OUTPUT": out},
                   feedback=feedback)
    assert_grid(out, product)
    with rasterio.open(out) as src:
        np.testing.assert_allclose(src.read(), expected_rgb(
            product.cube, product.wavelengths, ~product.bad), rtol=1e-5, atol=1e-6)
    assert any("left out as bad" in line for line in feedback.lines)
    assert snapshot(tmp_path / "download") == before


def test_importproduct_algorithm(provider, tmp_path):
    import processing

    product = write_prisma_l2d(str(tmp_path / "download"))
    out = str(tmp_path / "imported.tif")
    result = processing.run("special:importproduct", {"INPUT": product.path, "OUTPUT": out,
                                                       "BAD_BANDS": "1"})
    assert result["OUTPUT"] == out
    assert_grid(out, product)
    with rasterio.open(out) as src:
        assert src.tags(1)["bbl"] == "0"  # BAD_BANDS adds to the product's own flags
        bbl = np.array([int(src.tags(b)["bbl"]) for b in range(1, src.count + 1)])
    expected = product.bad.copy()
    expected[0] = True
    np.testing.assert_array_equal(bbl == 0, expected)
    assert os.path.exists(str(tmp_path / "imported.qml"))  # styled as pseudo-RGB


def test_qgis_process_leaves_nothing_beside_the_product(qgis_process, tmp_path):
    """Neither a run nor a failed run writes beside the input, not even a .aux.xml."""
    product = write_enmap_l2a(str(tmp_path / "download"))
    before = snapshot(tmp_path / "download")
    res = qgis_process("run", "special:pseudorgb", "--", f"INPUT={product.path}",
                       f"OUTPUT={tmp_path / 'rgb.tif'}")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "left out as bad" in res.stdout
    failed = qgis_process("run", "special:pseudorgb", "--", f"INPUT={product.path}",
                          "TARGET_WAVELENGTHS=-5", f"OUTPUT={tmp_path / 'rgb2.tif'}")
    assert failed.returncode != 0
    assert snapshot(tmp_path / "download") == before
    assert not (tmp_path / "rgb2.tif").exists()


def test_imported_product_classified_on_its_grid(tmp_path, tiny_clip):
    """EMIT imported then classified (whole pipeline): every output on the product's map
    grid with nodata where the GLT has no pixel."""
    from special_qgis.core import classes, importproduct, noiserobust, pipeline

    product = write_emit_l2a(str(tmp_path / "download"), downtrack=40, crosstrack=36)
    imported = str(tmp_path / "imported.tif")
    importproduct.import_product(product.path, imported)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("classes", "conf", "pseudo")}
    pipeline.classify(imported, classes.parse_classes("water; trees; roofs"), out["classes"],
                      out["conf"], out["pseudo"], model_name=tiny_clip.name,
                      pretrained=tiny_clip.checkpoint, window=16, stride=8, device="cpu",
                      schedule=noiserobust.Schedule(epochs=1, warmup_epochs=0, iterations=1,
                                                    samples_per_class=50, crop=16, width=8))
    invalid = np.isnan(product.cube[~product.bad]).any(axis=0)
    for path in out.values():
        assert_grid(path, product)
    with rasterio.open(out["classes"]) as src:
        labels = src.read(1)
    assert (labels[invalid] == 0).all() and (labels[~invalid] > 0).all()
