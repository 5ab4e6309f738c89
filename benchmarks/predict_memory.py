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
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from geohm.io.landsat import read_mtl, write_landsat_c2l2
from geohm.io.rasters import write_geotiff
from geohm.synth import make_demo

SR_NAMES = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]


def _tile(arr: np.ndarray, rows: int, cols: int) -> np.ndarray:
    reps = (int(np.ceil(rows / arr.shape[0])), int(np.ceil(cols / arr.shape[1])))
    return np.tile(arr, reps)[:rows, :cols]


def _read(path: Path) -> tuple[np.ndarray, Any]:
    with rasterio.open(path) as src:
        return src.read(1), src.profile


def make_scene(
    base: Path, work: Path, rows: int, cols: int | None = None, *, job: str = "memory"
) -> Path:
    """Write a rows x cols scene tiled from the demo and its scene YAML; return the YAML.

    ``job="memory"``: bands, QA_PIXEL and DEM; a 100-tree forest per metal; no risk
    layers. ``job="demo"``: the job of ``geohm demo`` (also the ``dist_source``
    covariate, a 200-tree forest, the risk block of the demo: single-factor, Nemerow and
    exceedance layers), scaled up. Bands are tiled and written one at a time (about
    120 MB each at 7800 x 7900).
    """
    import datetime as dt

    cols = rows if cols is None else cols
    base, work = base.resolve(), work.resolve()  # the YAML holds absolute paths
    folder = next((base / "target").iterdir())
    pid = folder.name
    attrs = read_mtl(folder / f"{pid}_MTL.txt")["IMAGE_ATTRIBUTES"]
    arrays = {}
    for i, name in enumerate(SR_NAMES, start=1):
        band, profile = _read(folder / f"{pid}_SR_B{i}.TIF")
        arrays[name] = _tile(band, rows, cols)
    st = _tile(_read(folder / f"{pid}_ST_B10.TIF")[0], rows, cols)
    qa = _tile(_read(folder / f"{pid}_QA_PIXEL.TIF")[0], rows, cols)
    stem = f"scene_{rows}" if rows == cols else f"scene_{rows}x{cols}"
    out = work / (stem if job == "memory" else f"{stem}_{job}")
    write_landsat_c2l2(
        out / pid,
        pid,
        sr=arrays,
        st_b10=st,
        qa_pixel=qa,
        crs=profile["crs"],
        transform=profile["transform"],
        acquired=dt.date.fromisoformat(attrs.get("DATE_ACQUIRED", "2019-11-15")),
        sun_elevation=float(attrs.get("SUN_ELEVATION", 35.0)),
        sun_azimuth=float(attrs.get("SUN_AZIMUTH", 160.0)),
    )
    del arrays, st, qa
    rasters = {"dem.tif": base / "dem.tif"}
    if job == "demo":
        rasters["dist_source.tif"] = base / "covariates" / "dist_source.tif"
    for name, path in rasters.items():
        with rasterio.open(path) as src:
            data = src.read(1, masked=True).filled(np.nan)
            write_geotiff(
                out / name,
                _tile(data, rows, cols),
                crs=src.crs,
                transform=Affine(*src.transform[:6]),
                nodata=-9999.0,
            )
    cfg = out / "scene.yaml"
    if job == "memory":
        text = f"""\
            name: memory-{rows}x{cols}
            landsat: {out / pid}
            dem: {out / "dem.tif"}
            samples: {{path: {base / "samples_target.gpkg"}, targets: [Cu, Pb]}}
            model: {{name: rf, params: {{n_estimators: 100}}}}
            validation: {{test_fraction: 0.2, cv_folds: 5, seed: 0}}
            output: {{dir: {out / "out"}, tile: 512, quicklooks: false}}
            """
    elif job == "demo":  # the demo's scene.yaml on the bigger grid
        text = f"""\
            name: demo-{rows}x{cols}
            landsat: {out / pid}
            dem: {out / "dem.tif"}
            covariates: {{dist_source: {out / "dist_source.tif"}}}
            samples: {{path: {base / "samples_target.gpkg"}, id: id, targets: [Cu, Pb], window: 1}}
            features: auto
            model: {{name: rf, params: {{n_estimators: 200}}}}
            validation: {{test_fraction: 0.2, cv_folds: 5, seed: 0}}
            risk: {{standard: gb15618, land_use: other, ph: 6.8,
                    indices: [single_factor, nemerow, exceedance]}}
            output: {{dir: {out / "out"}, tile: 512}}
            """
    else:
        raise ValueError(f"unknown job {job!r}")
    cfg.write_text(textwrap.dedent(text))
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
                  "n_outputs": len(res.outputs),
                  "pixels": res.report["grid"]["width"] * res.report["grid"]["height"]}))
"""


def _shape(text: str) -> tuple[int, int]:
    """``"7800"`` -> (7800, 7800); ``"7800x7900"`` -> (7800, 7900) (rows x columns)."""
    rows, _, cols = text.lower().partition("x")
    return int(rows), int(cols or rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes",
        type=_shape,
        nargs="+",
        default=[(1000, 1000), (4000, 4000)],
        help="scene sizes, N or ROWSxCOLS",
    )
    ap.add_argument(
        "--job",
        choices=["memory", "demo"],
        default="memory",
        help="memory: forest maps only; demo: the demo's whole job (risk layers too)",
    )
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "_work")
    args = ap.parse_args()
    base = args.work / "demo"
    if not (base / "scene.yaml").exists():
        make_demo(base, seed=0, size=400)
    rows = []
    for r, c in args.sizes:
        t = time.perf_counter()
        cfg = make_scene(base, args.work, r, c, job=args.job)
        gen = time.perf_counter() - t
        proc = subprocess.run(
            ["/usr/bin/time", "-v", sys.executable, "-c", CHILD, str(cfg)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"run failed:\n{proc.stderr[-4000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["process"] = {
            k: v.strip()
            for k, _, v in (line.strip().partition(": ") for line in proc.stderr.splitlines())
            if k
            in (
                "Elapsed (wall clock) time (h:mm:ss or m:ss)",
                "User time (seconds)",
                "System time (seconds)",
                "Maximum resident set size (kbytes)",
            )
        }
        (cfg.parent / "benchmark.json").write_text(json.dumps(res, indent=2))
        rows.append(((r, c), res, gen))
        print(json.dumps(res, indent=2), flush=True)
    print("| scene (pixels) | peak RSS (MB) | run wall time (s) | predict (s) | outputs |")
    print("|---|---|---|---|---|")
    for (r, c), res, _ in rows:
        print(
            f"| {r} x {c} ({res['pixels'] / 1e6:.1f} M) | {res['peak_rss_mb']:.0f} | "
            f"{res['wall_s']:.1f} | {res['timings']['predict']:.1f} | {res['n_outputs']} |"
        )


if __name__ == "__main__":
    main()
