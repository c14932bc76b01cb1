"""Runs trackintel 1.4.2 on a CSV of position fixes and writes its staypoints and triplegs.

polo's agreement test (tests/trackintel_agreement.rs) and `polo-bench timeline`
run this with the interpreter in $POLO_PYTHON:

    python trackintel_staypoints.py POINTS.csv STAYPOINTS.csv TRIPLEGS.csv \
        DIST_M TIME_MIN GAP_MIN

POINTS.csv has the header `user_id,tracked_at_ms,lat_e7,lon_e7`. Coordinates are
E7 integers divided by 1e7 here, which gives exactly the doubles polo computes.
Times are written back as integer milliseconds since the epoch. Only the two
trackintel calls are timed; the JSON line on stdout carries the counts and times.
"""

import json
import sys
import time
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import trackintel as ti

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
MS = pd.Timedelta(milliseconds=1)


def to_ms(series):
    return ((series - EPOCH) // MS).astype("int64")


def main():
    points_csv, sp_csv, tpl_csv = sys.argv[1:4]
    dist_m, time_min, gap_min = (float(v) for v in sys.argv[4:7])
    warnings.filterwarnings("ignore")

    raw = pd.read_csv(points_csv, dtype={"user_id": "int64", "tracked_at_ms": "int64",
                                         "lat_e7": "int64", "lon_e7": "int64"})
    lat = raw["lat_e7"].to_numpy(dtype="float64") / 1e7
    lon = raw["lon_e7"].to_numpy(dtype="float64") / 1e7
    frame = pd.DataFrame({
        "user_id": raw["user_id"],
        "tracked_at": pd.to_datetime(raw["tracked_at_ms"], unit="ms", utc=True),
    })
    pfs = ti.Positionfixes(gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326"))

    started = time.perf_counter()
    pfs, sp = pfs.generate_staypoints(method="sliding", distance_metric="haversine", dist_threshold=dist_m,
                                      time_threshold=time_min, gap_threshold=gap_min, include_last=False,
                                      exclude_duplicate_pfs=True, n_jobs=1)
    staypoints_s = time.perf_counter() - started
    started = time.perf_counter()
    pfs, tpls = pfs.generate_triplegs(sp, method="between_staypoints", gap_threshold=gap_min)
    triplegs_s = time.perf_counter() - started

    sp_out = pd.DataFrame({
        "user_id": sp["user_id"].astype("int64"),
        "started_at_ms": to_ms(sp["started_at"]),
        "finished_at_ms": to_ms(sp["finished_at"]),
        "lat": sp.geometry.y,
        "lon": sp.geometry.x,
    }).sort_values(["user_id", "started_at_ms"], kind="stable")
    sp_out.to_csv(sp_csv, index=False, float_format="%.9f")

    tpl_out = pd.DataFrame({
        "user_id": tpls["user_id"].astype("int64"),
        "started_at_ms": to_ms(tpls["started_at"]),
        "finished_at_ms": to_ms(tpls["finished_at"]),
        "points": np.array([len(g.coords) for g in tpls.geometry], dtype="int64"),
    }).sort_values(["user_id", "started_at_ms"], kind="stable")
    tpl_out.to_csv(tpl_csv, index=False)

    print(json.dumps({
        "trackintel": ti.__version__,
        "points": int(len(pfs)),
        "staypoints": int(len(sp_out)),
        "triplegs": int(len(tpl_out)),
        "staypoints_seconds": staypoints_s,
        "triplegs_seconds": triplegs_s,
    }))


if __name__ == "__main__":
    main()
