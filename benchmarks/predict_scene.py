"""Whole-scene prediction: geohm against the I/O floor and pyspatialml (issue 6).

On a synthetic scene with the demo's feature set, each case runs in a fresh Python
process that reports its wall time and peak resident memory (VmHWM):

* ``io_floor``: read every window of the feature cube (``build_cube`` on the demo
  config: reflectance, indices, terrain, covariate) and write one float32 GeoTIFF; no
  model. Every prediction path pays at least this.
* ``geohm_gabp`` / ``geohm_rf`` / ``geohm_rf_fast``: ``predict_map`` with a GA-BP net,
  a 100-tree random forest as scikit-learn fitted it, and the same forest through
  :func:`geohm.models.compiled.accelerate`.
* ``psml_gabp`` / ``psml_rf``: pyspatialml's ``Raster.predict`` with the same fitted
  models on the same features, read from a multi-band GeoTIFF of the cube that is
  written beforehand (outside the timing: pyspatialml needs its inputs as files).

The models are fitted once (on the demo's soil samples, target Cu) in their own
process and saved with joblib. All outputs are plain tiled (512) uncompressed float32
GeoTIFFs for every case, so the writers cost the same. Run by hand:

    python benchmarks/predict_scene.py                 # full size (see --size)
    python benchmarks/predict_scene.py --quick         # 400 x 400, a minute

pyspatialml 0.22 pins numpy < 2; install it without its pins
(``pip install --no-deps pyspatialml``); its one numpy-2 incompatibility on this path
(``np.find_common_type``) is shimmed in the child. Results go to
``benchmarks/_work/predict_scene/`` (``results_<size>.json`` and ``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from geohm._system import usable_cpus

WORK = Path(__file__).resolve().parent / "_work" / "predict_scene"
TARGET = "Cu"
CASES = ["io_floor", "geohm_gabp", "geohm_rf", "geohm_rf_fast", "psml_gabp", "psml_rf"]
#: The geohm cases again, reading the features from pyspatialml's stack instead of
#: computing them (apples to apples with pyspatialml).
STACK_CASES = ["io_floor_stack", "geohm_gabp_stack", "geohm_rf_stack", "geohm_rf_fast_stack"]
BLOCK = 512  # GeoTIFF tiles of the stack and the outputs; geohm's input chunk


def _peak_rss_mb() -> float:
    # VmHWM, not getrusage: ru_maxrss survives fork+exec (see predict_memory.py).
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


def _scene_config(demo: Path, model: dict[str, Any] | None = None) -> Any:
    from geohm.config import load_config

    cfg = load_config(demo / "scene.yaml")
    if model is not None:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update=model)})
    return cfg


def _writer(path: Path, cube: Any) -> Any:
    """A plain tiled float32 GeoTIFF on the cube's grid (the same for every case)."""
    import rasterio

    return rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cube.sizes["x"],
        height=cube.sizes["y"],
        count=1,
        dtype="float32",
        crs=cube.rio.crs,
        transform=cube.rio.transform(),
        nodata=-9999.0,
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
    )


class _Sink:
    """predict_map sink: NaN -> nodata, window written in place."""

    def __init__(self, dst: Any) -> None:
        self.dst = dst

    def write(self, row_off: int, col_off: int, data: Any) -> None:
        import numpy as np
        from rasterio.windows import Window

        out = np.where(np.isfinite(data), data, np.float32(-9999.0)).astype("float32")
        self.dst.write(out, 1, window=Window(col_off, row_off, out.shape[1], out.shape[0]))


# --------------------------------------------------------------------------- children


def child_fit(demo: Path, models_path: Path) -> dict[str, Any]:
    """Fit GA-BP and a 100-tree forest on the demo samples; save them (joblib)."""
    import joblib

    from geohm.io.rasters import gdal_env
    from geohm.pipeline import build_cube, sample_points
    from geohm.training import fit_target

    out: dict[str, Any] = {}
    with gdal_env():
        for key, model in (
            ("gabp", {"name": "ga-bp", "params": {}}),
            ("rf", {"name": "rf", "params": {"n_estimators": 100}}),
        ):
            cfg = _scene_config(demo, model)
            inputs, cube, features = build_cube(cfg, cfg.features)
            table, _ = sample_points(cfg, inputs, cube)
            t = time.perf_counter()
            fitted = fit_target(cfg.fit_spec(), table, TARGET)
            out[key] = {
                "estimator": fitted.estimator,
                "features": fitted.features,
                "required": fitted.required,
                "cube_features": features,
                "fit_s": time.perf_counter() - t,
                "n_train": fitted.report.get("n_train"),
            }
    joblib.dump(out, models_path)
    return {k: {"fit_s": v["fit_s"], "n_features": len(v["features"])} for k, v in out.items()}


def child_stack(demo: Path, stack: Path) -> dict[str, Any]:
    """Write the feature cube as one multi-band tiled GeoTIFF (pyspatialml's input)."""
    import rasterio
    from rasterio.windows import Window

    from geohm.io.rasters import gdal_env, read_block
    from geohm.pipeline import build_cube
    from geohm.predict import iter_windows

    cfg = _scene_config(demo)
    with gdal_env():
        _, cube, features = build_cube(cfg, cfg.features)
        h, w = cube.sizes["y"], cube.sizes["x"]
        tmp = stack.with_suffix(".tmp.tif")
        with rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=w,
            height=h,
            count=len(features),
            dtype="float32",
            crs=cube.rio.crs,
            transform=cube.rio.transform(),
            nodata=float("nan"),
            tiled=True,
            blockxsize=BLOCK,
            blockysize=BLOCK,
            interleave="band",
            BIGTIFF="YES",
        ) as dst:
            for r, c, hh, ww in iter_windows(h, w, BLOCK):
                block = read_block(cube.isel(y=slice(r, r + hh), x=slice(c, c + ww)))
                dst.write(block, window=Window(c, r, ww, hh))
            dst.descriptions = tuple(features)
        tmp.rename(stack)
    return {"features": features}


def _geohm_setup(demo: Path, stack: Path | None = None) -> tuple[Any, Any, Any, int, int]:
    """Config, lazy cube, prediction source, workers, window side.

    From the raw inputs the source is what ``run_scene`` predicts from: the cube built
    window by window (``window_source``). From the stack it is the lazy cube of the
    stack itself.
    """
    from geohm.pipeline import build_cube, window_source
    from geohm.predict import window_size

    cfg = _scene_config(demo)
    if stack is None:
        inputs, cube, feats = build_cube(cfg, cfg.features)
        source = window_source(inputs, feats)
    else:  # the precomputed features, opened lazily as geohm opens rasters
        import rioxarray
        import xarray as xr

        da = rioxarray.open_rasterio(stack, masked=True, chunks={"x": BLOCK, "y": BLOCK})
        assert isinstance(da, xr.DataArray)
        names = list(da.attrs.get("long_name") or [])
        cube = da.rename(band="feature").assign_coords(feature=names)
        source = cube
    workers = usable_cpus()
    # As run_scene: window from the default 1024 MB budget, a multiple of the chunk.
    tile = window_size(cube.sizes["feature"], workers=workers, memory_mb=1024, block=BLOCK)
    return cfg, cube, source, workers, tile


def child_case(case: str, demo: Path, models_path: Path, stack: Path, out: Path) -> dict:
    """Run one case; return its timings (the caller adds wall time and peak RSS)."""
    import joblib

    info: dict[str, Any] = {}
    models = joblib.load(models_path) if case != "io_floor" else {}
    if case.startswith("psml_"):
        import numpy as np

        if not hasattr(np, "find_common_type"):  # removed in numpy 2; pyspatialml uses it
            np.find_common_type = lambda t, _s: np.result_type(*t)  # type: ignore[attr-defined]  # noqa: NPY201
        from pyspatialml import Raster

        m = models["gabp" if case == "psml_gabp" else "rf"]
        t = time.perf_counter()
        raster = Raster(str(stack))
        assert list(raster.names) == list(m["features"]) or len(raster.names) == len(m["features"])
        raster.predict(
            m["estimator"],
            file_path=str(out),
            driver="GTiff",
            dtype="float32",
            nodata=-9999.0,
            tiled=True,
            blockxsize=BLOCK,
            blockysize=BLOCK,
        )
        info["predict_s"] = time.perf_counter() - t
        return info

    from geohm.io.rasters import gdal_env, read_block
    from geohm.predict import TargetModel, iter_windows, predict_map

    with gdal_env():
        t = time.perf_counter()
        on_stack = case.endswith("_stack")
        case = case.removesuffix("_stack")
        cfg, cube, source, workers, tile = _geohm_setup(demo, stack if on_stack else None)
        info.update(workers=workers, tile=tile)
        if case == "io_floor":
            from concurrent.futures import ThreadPoolExecutor

            from rasterio.windows import Window

            windows = list(iter_windows(cube.sizes["y"], cube.sizes["x"], tile))

            def read(win: tuple[int, int, int, int]) -> Any:
                r, c, h, w = win
                if source is cube:
                    return read_block(cube.isel(y=slice(r, r + h), x=slice(c, c + w)))[0]
                return source.read(r, c, h, w)[0]  # every feature computed, one written

            # The same window threads and in-order writer as predict_map, no model.
            with _writer(out, cube) as dst, ThreadPoolExecutor(workers) as pool:
                for (r, c, h, w), band in zip(windows, pool.map(read, windows), strict=True):
                    dst.write(band.astype("float32"), 1, window=Window(c, r, w, h))
        else:
            m = models["gabp" if case == "geohm_gabp" else "rf"]
            est = m["estimator"]
            if case == "geohm_rf_fast":
                from geohm.models.compiled import accelerate

                t0 = time.perf_counter()
                est = accelerate(est)
                info["accelerate_s"] = time.perf_counter() - t0
                info["backend"] = repr(est.steps[-1][1])[:80]
            tm = TargetModel(est, m["features"], required=m["required"])
            with _writer(out, cube) as dst:
                stats = predict_map(
                    source, {TARGET: tm}, {TARGET: _Sink(dst)}, tile=tile, workers=workers
                )
            info["mapped_pixels"] = stats[TARGET].count
            info["map_mean"] = stats[TARGET].as_dict()["mean"]
        if source is not cube:
            source.close()  # the window readers' GDAL handles
        info["predict_s"] = time.perf_counter() - t
    return info


# --------------------------------------------------------------------------- parent


def _run_child(args: list[str], log: Path) -> dict[str, Any]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed (log: {log}):\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    return res


def _compare_maps(a: Path, b: Path) -> dict[str, float]:
    """Largest relative difference between two maps (valid in both) and nodata agreement."""
    import numpy as np
    import rasterio

    worst, same_mask, n = 0.0, True, 0
    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        for _, win in sa.block_windows(1):
            x = sa.read(1, window=win, masked=True)
            y = sb.read(1, window=win, masked=True)
            ok = ~np.ma.getmaskarray(x) & ~np.ma.getmaskarray(y)
            same_mask &= bool((np.ma.getmaskarray(x) == np.ma.getmaskarray(y)).all())
            if ok.any():
                # geohm clips concentrations at 0 (TargetModel.clip_min); pyspatialml does not
                xv = np.maximum(x.data[ok].astype("float64"), 0.0)
                yv = np.maximum(y.data[ok].astype("float64"), 0.0)
                rel = np.abs(xv - yv) / np.maximum(np.abs(yv), 1e-3)
                worst = max(worst, float(rel.max()))
                n += int(ok.sum())
    return {"max_rel_diff": worst, "same_nodata": same_mask, "compared": n}


def _ensure_demo(shape: tuple[int, int], work: Path, source: str) -> Path:
    """The scene folder (with scene.yaml) of ``rows x cols`` pixels.

    ``demo``: ``make_demo(size)`` itself (square scenes only). ``tiled``: the 400 x 400
    demo's target year tiled to the shape (``predict_memory.make_scene`` with the demo's
    job: bands, QA_PIXEL, DEM, the ``dist_source`` covariate, the demo's samples),
    because make_demo at full size is too slow and too memory hungry (see
    benchmarks/README.md).
    """
    rows, cols = shape
    if source == "demo" or shape == (400, 400):
        if rows != cols:
            raise SystemExit("make_demo makes square scenes: use --source tiled")
        demo = work / f"demo_{rows}"
        if not (demo / "scene.yaml").exists():
            res = _run_child(["demo", str(demo), str(rows)], work / f"demo_{rows}.log")
            (work / f"demo_{rows}.json").write_text(json.dumps(res))
        return demo
    base = _ensure_demo((400, 400), work, "demo")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from predict_memory import make_scene

    scene = work / f"scene_{_label(shape)}_demo"  # make_scene's folder
    if not (scene / "scene.yaml").exists():
        scene = make_scene(base, work, rows, cols, job="demo").parent
    return scene


def _label(shape: tuple[int, int]) -> str:
    return f"{shape[0]}" if shape[0] == shape[1] else f"{shape[0]}x{shape[1]}"


def _table(rows: list[dict[str, Any]], floor: dict[str, Any] | None) -> str:
    lines = [
        "| case | wall (s) | Mpx/s | peak RSS (MB) | vs I/O floor |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['wall_s'] / floor['wall_s']:.2f}x" if floor else "-"
        lines.append(
            f"| {r['case']} | {r['wall_s']:.1f} | {r['mpx_s']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{ratio} |"
        )
    return "\n".join(lines)


def run(
    shape: tuple[int, int], cases: list[str], work: Path, *, keep: bool, source: str
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    demo = _ensure_demo(shape, work, source)
    case_dir = work / f"size_{_label(shape)}"
    case_dir.mkdir(exist_ok=True)
    models = case_dir / "models.joblib"
    pixels = shape[0] * shape[1]
    result: dict[str, Any] = {"size": list(shape), "pixels": pixels, "cases": {}}
    result["fit"] = _run_child(["fit", str(demo), str(models)], case_dir / "fit.log")
    stack = case_dir / "stack.tif"
    if any(c.startswith("psml_") or c.endswith("_stack") for c in cases) and not stack.exists():
        result["stack_write"] = _run_child(["stack", str(demo), str(stack)], case_dir / "stack.log")
    rows = []
    for case in cases:
        out = case_dir / f"{case}.tif"
        res = _run_child(
            ["case", case, str(demo), str(models), str(stack), str(out)], case_dir / f"{case}.log"
        )
        res["case"] = case
        res["mpx_s"] = pixels / 1e6 / res["wall_s"]
        result["cases"][case] = res
        rows.append(res)
        print(f"{case}: {res['wall_s']:.1f} s, peak {res['peak_rss_mb']:.0f} MB", flush=True)
    c = result["cases"]
    checks = {}
    for a, b in (
        ("geohm_rf_fast", "geohm_rf"),
        ("psml_rf", "geohm_rf"),
        ("psml_gabp", "geohm_gabp"),
    ):
        if a in c and b in c:
            checks[f"{a} vs {b}"] = _compare_maps(case_dir / f"{a}.tif", case_dir / f"{b}.tif")
    result["map_checks"] = checks
    ratios = {}
    for num, den in (
        ("geohm_gabp", "io_floor"),
        ("geohm_rf", "io_floor"),
        ("geohm_rf_fast", "io_floor"),
        ("psml_rf", "geohm_rf_fast"),
        ("psml_rf", "geohm_rf"),
        ("psml_gabp", "geohm_gabp"),
        ("geohm_gabp_stack", "io_floor_stack"),
        ("psml_rf", "geohm_rf_fast_stack"),
        ("psml_gabp", "geohm_gabp_stack"),
    ):
        if num in c and den in c:
            ratios[f"{num} / {den}"] = c[num]["wall_s"] / c[den]["wall_s"]
    result["ratios"] = ratios
    result["table"] = _table(rows, c.get("io_floor") or c.get("io_floor_stack"))
    result["load_average"] = os.getloadavg()
    if not keep:
        for case in cases:
            (case_dir / f"{case}.tif").unlink(missing_ok=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=[7800, 7900],
        help="scene rows [cols] (a Landsat scene is about 7800 x 7900)",
    )
    ap.add_argument("--quick", action="store_true", help="400 x 400 (the demo's own size)")
    ap.add_argument("--compare", type=int, default=2000, help="also this size (peak RSS); 0: no")
    ap.add_argument("--cases", nargs="+", default=CASES, choices=CASES + STACK_CASES)
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--keep", action="store_true", help="keep the predicted maps")
    ap.add_argument("--name", default="results", help="results file stem (+ _<size>)")
    ap.add_argument(
        "--source",
        choices=["tiled", "demo"],
        default="tiled",
        help="scene: the 400 x 400 demo tiled to the size, or make_demo at the size",
    )
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, rest = args.child[0], args.child[1:]
        t = time.perf_counter()
        if kind == "demo":
            from geohm.synth import make_demo

            make_demo(rest[0], seed=0, size=int(rest[1]))
            res: dict[str, Any] = {}
        elif kind == "fit":
            res = child_fit(Path(rest[0]), Path(rest[1]))
        elif kind == "stack":
            res = child_stack(Path(rest[0]), Path(rest[1]))
        else:
            res = child_case(rest[0], *map(Path, rest[1:5]))
        # wall_s: the work itself (open the inputs .. output closed), without the imports;
        # child_s: the whole child after argument parsing.
        child_s = time.perf_counter() - t
        res.update(wall_s=res.pop("predict_s", child_s), child_s=child_s)
        res["peak_rss_mb"] = _peak_rss_mb()
        # CPU seconds of the whole child (all threads, imports included): a steadier
        # measure than wall time on a shared machine.
        times = os.times()
        res["cpu_s"] = times.user + times.system
        print(json.dumps(res, default=str))
        return
    shape = (400, 400) if args.quick else (args.size[0], args.size[-1])
    shapes = [shape]
    if args.compare and not args.quick and (args.compare, args.compare) != shape:
        shapes.append((args.compare, args.compare))
    report: dict[str, Any] = {"cores": usable_cpus(), "runs": []}
    stem = f"{args.name}_{_label(shape)}"
    for sh in shapes:
        cases = args.cases if sh == shape else [c for c in args.cases if not c.startswith("psml")]
        res = run(sh, cases, args.work, keep=args.keep, source=args.source)
        report["runs"].append(res)
        dump = json.dumps(report, indent=2, default=str)
        (args.work / f"{stem}.json").write_text(dump)
    md = []
    for res in report["runs"]:
        r, c = res["size"]
        md.append(f"### {r} x {c} ({res['pixels'] / 1e6:.1f} M pixels)\n\n{res['table']}\n")
        md.append("Ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in res["ratios"].items()))
        for k, v in res["map_checks"].items():
            md.append(
                f"\nmap check {k}: max relative difference {v['max_rel_diff']:.2e}, "
                f"same nodata: {v['same_nodata']}"
            )
        md.append("")
    text = "\n".join(md)
    (args.work / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
