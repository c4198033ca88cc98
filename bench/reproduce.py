#!/usr/bin/env python3
"""Reproduce the ablation table of SPECIAL (Pang et al., arXiv 2501.16222) on a public
benchmark scene with ground truth: OA, AA and κ of the CLIP pseudo-labels at scale 1 only,
of the pseudo-labels with resolution scaling (RS), and of the final map of the
noise-robust network (stage II), each scored against the ground truth.

  .venv/bin/python bench/reproduce.py --cube Pavia.mat --truth Pavia_gt.mat \\
      --sensor rosis-pavia-centre --pretrained openai \\
      --classes "water; trees; meadows; self-blocking bricks; bare soil; asphalt; \\
                 bitumen; tile; shadows"

Run with --help for every option. The pipeline's options (--model ... --scales, --epochs ...
--spectral-prior, --device) are built from the plugin's parameter spec
(special_qgis.core.spec), so their defaults are the plugin's. The pipeline is the plugin's
own (special_qgis.core: pseudolabel.run for stage I, noiserobust.run for stage II); this
script only converts the benchmark's files, runs the stages and scores the maps. The ground
truth is used only to score: it never enters training or model selection.

Outputs: the table (OA, AA, κ×100 and wall time per row, then per-class accuracy) on
standard output, a tqdm progress bar per stage on standard error (none with --quiet);
--json PATH writes the same as JSON, and --workdir DIR keeps the converted cube and every
map (GeoTIFFs). Exit status: 0 all rows scored, 1 stage II refused the pseudo-labels, 2 a
mistake in the inputs or options, 130 interrupted. docs/benchmarks.md explains it all.

The code is in bench/reproduction/: options.py (the command line), scene.py (band centres,
reading and converting the inputs), cli.py (the run), report.py (scores and table).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reproduction.cli import main  # noqa: E402
from reproduction.options import build_parser  # noqa: E402
from reproduction.scene import Cube, sensor_wavelengths, write_cube_tif  # noqa: E402

__all__ = ["Cube", "build_parser", "main", "sensor_wavelengths", "write_cube_tif"]

if __name__ == "__main__":
    sys.exit(main())
