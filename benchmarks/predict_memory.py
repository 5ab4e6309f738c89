"""Peak memory of a whole `geohm run` as the scene grows (1000 x 1000 vs 4000 x 4000).

The scenes are the built-in demo's target year (400 x 400) tiled to N x N pixels (bands,
QA_PIXEL and DEM), with the demo's soil samples, so the job is the demo's job on a larger
grid. Each size runs in a fresh Python process; its peak resident set size is the kernel's
high-water mark (VmHWM). Run by hand:

    python benchmarks/predict_memory.py --sizes 1000 4000

and copy the printed table into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from geohm.io.landsat import read_mtl, write_landsat_c2l2
from geohm.io.rasters import write_geotiff
from geohm.synth import make_demo

SR_NAMES = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]


def _tile(arr: np.ndarray, n: int) -> np.ndarray:
    reps = int(np.ceil(n / arr.shape[0]))
    return np.tile(arr, (reps, reps))[:n, :n]


def make_scene(base: Path, work: Path, n: int) -> Path:
    """Write an N x N scene (tiled from the demo) and its scene YAML; return the YAML path."""
    folder = next((base / "target").iterdir())
    pid = folder.name
    mtl = read_mtl(folder / f"{pid}_MTL.txt")
    attrs = mtl["IMAGE_ATTRIBUTES"]
    arrays = {}
    for i, name in enumerate(SR_NAMES, start=1):
        with rasterio.open(folder / f"{pid}_SR_B{i}.TIF") as src:
            arrays[name] = _tile(src.read(1), n)
            crs, t = src.crs, src.transform
    with rasterio.open(folder / f"{pid}_ST_B10.TIF") as src:
        st = _tile(src.read(1), n)
    with rasterio.open(folder / f"{pid}_QA_PIXEL.TIF") as src:
        qa = _tile(src.read(1), n)
    out = work / f"scene_{n}"
    import datetime as dt

    write_landsat_c2l2(
        out / pid,
        pid,
        sr=arrays,
        st_b10=st,
        qa_pixel=qa,
        crs=crs,
        transform=t,
        acquired=dt.date.fromisoformat(attrs.get("DATE_ACQUIRED", "2019-11-15")),
        sun_elevation=float(attrs.get("SUN_ELEVATION", 35.0)),
        sun_azimuth=float(attrs.get("SUN_AZIMUTH", 160.0)),
    )
    with rasterio.open(base / "dem.tif") as src:
        dem = src.read(1, masked=True).filled(np.nan)
        write_geotiff(
            out / "dem.tif",
            _tile(dem, n),
            crs=src.crs,
            transform=Affine(*src.transform[:6]),
            nodata=-9999.0,
        )
    cfg = out / "scene.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        name: memory-{n}
        landsat: {out / pid}
        dem: {out / "dem.tif"}
        samples: {{path: {base / "samples_target.gpkg"}, targets: [Cu, Pb]}}
        model: {{name: rf, params: {{n_estimators: 100}}}}
        validation: {{test_fraction: 0.2, cv_folds: 5, seed: 0}}
        output: {{dir: {out / "out"}, tile: 512, quicklooks: false}}
        """)
    )
    return cfg


# Peak RSS is read from /proc/self/status (VmHWM), not getrusage: ru_maxrss survives
# fork+exec, so a child would report the (large) benchmark parent's RSS at fork time.
CHILD = """
import json, re, sys, time
from pathlib import Path
from geohm.config import load_config
from geohm.pipeline import run_scene
t = time.perf_counter()
res = run_scene(load_config(sys.argv[1]))
hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"peak_rss_mb": hwm / 1024,
                  "wall_s": time.perf_counter() - t, "timings": res.report["timings"],
                  "pixels": res.report["grid"]["width"] * res.report["grid"]["height"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "_work")
    args = ap.parse_args()
    base = args.work / "demo"
    if not (base / "scene.yaml").exists():
        make_demo(base, seed=0, size=400)
    rows = []
    for n in args.sizes:
        t = time.perf_counter()
        cfg = make_scene(base, args.work, n)
        gen = time.perf_counter() - t
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(cfg)], capture_output=True, text=True, check=True
        )
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((n, res, gen))
    print("| scene (pixels) | peak RSS (MB) | run wall time (s) | predict (s) |")
    print("|---|---|---|---|")
    for n, res, _ in rows:
        print(
            f"| {n} x {n} ({res['pixels'] / 1e6:.1f} M) | {res['peak_rss_mb']:.0f} | "
            f"{res['wall_s']:.1f} | {res['timings']['predict']:.1f} |"
        )


if __name__ == "__main__":
    main()
