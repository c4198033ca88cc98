#!/usr/bin/env python3
"""Benchmark special:pseudorgb's core: throughput and peak memory against scene size.

Writes ENVI BSQ int16 cubes with a nodata value (the worst case: every band must be read
to find nodata pixels) of growing size, runs ``write_pseudo_rgb`` on each in a fresh
process and reports wall time, MB/s of input and peak resident memory. Peak memory
should stay flat as the scene grows: that is what lets a scene larger than RAM work.

  .venv/bin/python bench/bench_pseudorgb.py [--sizes 1000,2000,4000] [--bands 120]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

# The child reports its own peak (VmHWM): getrusage's ru_maxrss survives fork and exec and
# would report the parent's peak when that is higher.
CHILD = r"""
import json, sys, time
from special_qgis.core import pseudo_rgb
t = time.perf_counter()
pseudo_rgb.write_pseudo_rgb(sys.argv[1], sys.argv[2])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"seconds": time.perf_counter() - t, "peak_rss_mb": int(hwm.split()[1]) / 1024}))
"""


def write_cube(path: str, size: int, bands: int) -> None:
    """A smooth random cube written band by band (never whole in memory)."""
    rng = np.random.default_rng(0)
    wl = np.linspace(400, 2500, bands)
    with open(path, "wb") as fh:
        for b in range(bands):
            band = (1000 + 100 * b + rng.integers(0, 500, size=(size, size))).astype("<i2")
            band[:8, :8] = -9999
            band.tofile(fh)
    with open(path[:-4] + ".hdr", "w") as fh:
        fh.write(f"ENVI\nsamples = {size}\nlines = {size}\nbands = {bands}\nheader offset = 0\n"
                 "file type = ENVI Standard\ndata type = 2\ninterleave = bsq\nbyte order = 0\n"
                 "data ignore value = -9999\nwavelength units = Nanometers\n"
                 "map info = {UTM, 1, 1, 500000, 4100000, 1, 1, 33, North, WGS-84}\n"
                 "wavelength = {" + ",".join(f"{w:.2f}" for w in wl) + "}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,4000")
    parser.add_argument("--bands", type=int, default=120)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"{'scene':>18} {'input GB':>9} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12}")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            src = os.path.join(tmp, f"cube{size}.img")
            write_cube(src, size, args.bands)
            out = os.path.join(tmp, f"rgb{size}.tif")
            res = subprocess.run([sys.executable, "-c", CHILD, src, out], check=True,
                                 capture_output=True, text=True)
            stats = json.loads(res.stdout.strip().splitlines()[-1])
            gb = os.path.getsize(src) / 1e9
            print(f"{size:>6}x{size:<5}x{args.bands:<4} {gb:9.2f} {stats['seconds']:8.1f} "
                  f"{gb * 1000 / stats['seconds']:7.0f} {stats['peak_rss_mb']:12.0f}")
            os.remove(src)
            os.remove(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
