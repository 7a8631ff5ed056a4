"The model registry: the life cycle, refusals that leave live unchanged, atomic and concurrent registration, the CLI."
from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import subprocess
import sys

import pytest

import hrl_fund.registry as registry_module
from conftest import tool_env
from hrl_fund.registry import Registry, RegistryError, fingerprint_matches, main

FINGERPRINT = {"env_id": "hrl_fund/CIO-v0", "version": 1, "obs_names": ["nav", "vix"]}
META = {"kind": "cio", "env_fingerprint": FINGERPRINT, "data_span": ["2015-01-02", "2020-12-31"],
        "metrics": {"sharpe_ratio": 0.8, "max_drawdown": 0.12}, "source_hashes": {"data/raw": "ab12"}}


def make_model(folder, payload: bytes):
    "A fake exported model folder: policy.onnx holding `payload`, policy.json and a nested extra file"
    (folder / "normalisation").mkdir(parents=True)
    (folder / "policy.onnx").write_bytes(payload)
    (folder / "policy.json").write_text(json.dumps({"obs_names": FINGERPRINT["obs_names"]}))
    (folder / "normalisation" / "stats.npz").write_bytes(b"\x00\x01" + payload)
    return folder


@pytest.fixture
def registry(tmp_path):
    "A registry with two versions, neither promoted"
    ticks = itertools.count()
    reg = Registry(tmp_path / "registry", clock=lambda: f"t{next(ticks):03d}")
    for index, payload in enumerate([b"model A", b"model B"]):
        reg.register(make_model(tmp_path / f"model_{index}", payload),
                     {**META, "metrics": {"sharpe_ratio": 0.8 + index / 10, "max_drawdown": 0.12}})
    return reg


def test_register_copies_files_with_hashes_and_meta(registry, tmp_path):
    assert registry.versions() == ["v0001", "v0002"]
    record = registry.record("v0002")
    assert record["files"] == {"normalisation/stats.npz": hashlib.sha256(b"\x00\x01model B").hexdigest(),
                               "policy.json": hashlib.sha256(json.dumps({"obs_names": ["nav", "vix"]}).encode()).hexdigest(),
                               "policy.onnx": hashlib.sha256(b"model B").hexdigest()}
    assert (record["version"], record["kind"], record["env_fingerprint"], record["data_span"]) == \
        ("v0002", "cio", FINGERPRINT, ["2015-01-02", "2020-12-31"])
    assert record["metrics"] == {"sharpe_ratio": 0.9, "max_drawdown": 0.12}
    assert record["source_hashes"] == {"data/raw": "ab12"} and record["notes"] == ""
    assert record["registered_at"] == "t002" and record["registered_from"] == str((tmp_path / "model_1").resolve())
    assert (registry.load_files("v0001") / "policy.onnx").read_bytes() == b"model A"
    assert sorted(path.name for path in (registry.root / "versions").iterdir()) == ["v0001", "v0002"]
    assert json.loads(registry.state_path.read_text())["versions"]["v0001"] == registry.record("v0001")
    assert registry.live() is None and registry.shadow_version() is None


def test_promote_shadow_rollback_and_history(registry, tmp_path):
    third = registry.register(make_model(tmp_path / "model_2", b"model C"), META)
    registry.promote("v0001")
    registry.promote("v0002")
    registry.shadow(third)
    registry.promote(third)  # the shadow goes live, so the shadow is cleared
    assert (registry.live(), registry.shadow_version()) == ("v0003", None)
    registry.shadow("v0001")
    registry.rollback()
    assert registry.live() == "v0002"
    registry.rollback()  # back to v0001, which was the shadow
    assert (registry.live(), registry.shadow_version()) == ("v0001", None)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    registry.shadow("v0002")
    registry.shadow(None)
    with pytest.raises(RegistryError, match="no shadow version is set"):
        registry.shadow(None)
    with pytest.raises(RegistryError, match="v0001 is live"):
        registry.shadow("v0001")
    with pytest.raises(RegistryError, match="v0001 is already live"):
        registry.promote("v0001")
    events = [(event["action"], event["version"], event["previous"]) for event in registry.history()]
    assert events == [("register", "v0001", None), ("register", "v0002", None), ("register", "v0003", None),
                      ("promote", "v0001", None), ("promote", "v0002", "v0001"), ("shadow", "v0003", None),
                      ("promote", "v0003", "v0002"), ("shadow", None, "v0003"), ("shadow", "v0001", None),
                      ("rollback", "v0002", "v0003"), ("rollback", "v0001", "v0002"), ("shadow", None, "v0001"),
                      ("shadow", "v0002", None), ("shadow", None, "v0002")]
    times = [event["time"] for event in registry.history()]
    assert times == sorted(times) and len(set(times)) == len(times)


@pytest.mark.parametrize("damage, message", [
    (lambda folder: (folder / "policy.onnx").write_bytes(b"tampered"), "v0002: file policy.onnx has SHA-256"),
    (lambda folder: (folder / "normalisation" / "stats.npz").unlink(), "v0002: file normalisation/stats.npz is missing"),
    (lambda folder: (folder / "backdoor.onnx").write_bytes(b"x"), "v0002: file backdoor.onnx in"),
])
def test_a_damaged_version_is_refused_and_live_unchanged(registry, damage, message):
    registry.promote("v0001")
    damage(registry.folder("v0002"))
    before = registry.state_path.read_bytes()
    for attempt in [lambda: registry.verify("v0002"), lambda: registry.load_files("v0002"),
                    lambda: registry.promote("v0002"), lambda: registry.shadow("v0002")]:
        with pytest.raises(RegistryError, match=message):
            attempt()
    assert registry.live() == "v0001" and registry.shadow_version() is None
    assert registry.state_path.read_bytes() == before
    registry.verify("v0001")


def test_rollback_to_a_damaged_version_is_refused(registry):
    registry.promote("v0001")
    registry.promote("v0002")
    (registry.folder("v0001") / "policy.json").write_text("{}")
    with pytest.raises(RegistryError, match="v0001: file policy.json"):
        registry.rollback()
    assert registry.live() == "v0002"


def test_unknown_version_is_refused(registry):
    registry.promote("v0001")
    for attempt in [lambda: registry.promote("v0009"), lambda: registry.shadow("v0009"),
                    lambda: registry.record("v0009"), lambda: registry.verify("2")]:
        with pytest.raises(RegistryError, match=r"unknown version '(v0009|2)' in .* \(registered: v0001, v0002\)"):
            attempt()
    assert registry.live() == "v0001"


@pytest.mark.parametrize("change, message", [
    ({"kind": None}, "meta is missing 'kind'"),
    ({"kind": 7}, "meta['kind'] must be a non-empty string, got 7"),
    ({"env_fingerprint": ["hrl_fund/CIO-v0"]}, "meta['env_fingerprint'] must be a mapping or a non-empty string, got ['hrl_fund/CIO-v0']"),
    ({"data_span": ["2021-01-01", "2020-12-31"]}, "meta['data_span'] must be [start, end]: two dates written YYYY-MM-DD with start <= end, got ['2021-01-01', '2020-12-31']"),
    ({"data_span": ["2020-01-01", "31/12/2020"]}, "'31/12/2020'"),
    ({"data_span": ["2020-01-01"]}, "got ['2020-01-01']"),
    ({"metrics": {"sharpe_ratio": float("nan")}}, "meta['metrics']['sharpe_ratio'] must be a finite number, got nan"),
    ({"metrics": {"sharpe_ratio": "0.8"}}, "meta['metrics']['sharpe_ratio'] must be a finite number, got '0.8'"),
    ({"metrics": {"yearly": {"2020": 0.1}}}, "meta['metrics']['yearly']"),
    ({"metrics": [0.8]}, "meta['metrics'] must be a flat mapping"),
    ({"source_hashes": "ab12"}, "meta['source_hashes'] must be a mapping, got 'ab12'"),
    ({"notes": ["a"]}, "meta['notes'] must be a string"),
    ({"metric": {}}, "meta has unknown key 'metric' = {}"),
])
def test_bad_meta_is_refused_and_nothing_written(tmp_path, change, message):
    meta = {key: value for key, value in {**META, **change}.items() if value is not None}
    registry = Registry(tmp_path / "registry")
    with pytest.raises(RegistryError) as raised:
        registry.register(make_model(tmp_path / "model", b"A"), meta)
    assert message in str(raised.value)
    assert not registry.root.exists()


def test_a_failed_write_leaves_no_version(registry, tmp_path, monkeypatch):
    before = registry.state_path.read_bytes()
    def failing_write(path, obj):
        raise OSError("disk full")
    monkeypatch.setattr(registry_module, "write_json", failing_write)
    with pytest.raises(OSError, match="disk full"):
        registry.register(make_model(tmp_path / "model_x", b"X"), META)
    monkeypatch.undo()
    assert registry.state_path.read_bytes() == before
    assert sorted(path.name for path in (registry.root / "versions").iterdir()) == ["v0001", "v0002"]
    assert registry.register(make_model(tmp_path / "model_y", b"Y"), META) == "v0003"


def test_a_folder_left_by_a_crash_is_never_reused(registry, tmp_path):
    (registry.root / "versions" / "v0003").mkdir()
    assert registry.register(make_model(tmp_path / "model_x", b"X"), META) == "v0004"
    assert registry.versions() == ["v0001", "v0002", "v0004"]


def _register_from_process(root: str, worker: int, folders: list[str]) -> list[tuple[str, str]]:
    "Register each of `folders` (made by `worker`) into `root`; the versions it was given"
    registry = Registry(root)
    return [(registry.register(folder, {**META, "notes": f"worker {worker} model {index}"}), f"{worker}/{index}")
            for index, folder in enumerate(folders)]


def test_concurrent_registration_from_processes(tmp_path):
    workers, per_worker = 4, 6
    folders = {worker: [str(make_model(tmp_path / f"w{worker}_{index}", f"{worker}/{index}".encode()))
                        for index in range(per_worker)] for worker in range(workers)}
    root = str(tmp_path / "registry")
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.starmap(_register_from_process, [(root, worker, folders[worker]) for worker in range(workers)])
    given = [pair for result in results for pair in result]
    registry = Registry(root)
    assert sorted(version for version, _ in given) == [f"v{number:04d}" for number in range(1, workers * per_worker + 1)]
    assert registry.versions() == sorted(version for version, _ in given)
    for version, owner in given:
        worker, index = owner.split("/")
        assert registry.record(version)["notes"] == f"worker {worker} model {index}"
        assert (registry.load_files(version) / "policy.onnx").read_bytes() == owner.encode()
    assert [event["action"] for event in registry.history()] == ["register"] * workers * per_worker
    assert sorted(path.name for path in (registry.root / "versions").iterdir()) == registry.versions()


def test_fingerprint_matches(registry):
    record = registry.record("v0001")
    fingerprint_matches(record, {**FINGERPRINT, "obs_names": ("nav", "vix")})
    with pytest.raises(RegistryError, match="v0001 was registered for another env: obs_names: \\['nav', 'vix'\\] registered, \\['nav'\\] here"):
        fingerprint_matches(record, {**FINGERPRINT, "obs_names": ["nav"]})
    with pytest.raises(RegistryError, match="registered, 'cio-v0' here"):
        fingerprint_matches(record, "cio-v0")
    with pytest.raises(RegistryError, match="version: 1 registered, None here"):
        fingerprint_matches(record, {key: value for key, value in FINGERPRINT.items() if key != "version"})


def test_default_clock_is_utc_iso(tmp_path):
    import datetime as dt
    registry = Registry(tmp_path / "registry")
    registry.register(make_model(tmp_path / "model", b"A"), META)
    stamp = dt.datetime.fromisoformat(registry.record("v0001")["registered_at"])
    assert stamp.utcoffset() == dt.timedelta(0)


def test_cli_commands(registry, tmp_path, capsys):
    root = str(registry.root)
    (tmp_path / "meta.json").write_text(json.dumps({**META, "notes": "from the CLI"}))
    main(["--root", root, "register", str(make_model(tmp_path / "model_c", b"C")), "--meta", str(tmp_path / "meta.json")])
    main(["--root", root, "promote", "v0002"])
    main(["--root", root, "promote", "v0003"])
    main(["--root", root, "shadow", "v0001"])
    main(["--root", root, "list"])
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["registered v0003: 3 files from " + str(tmp_path / "model_c"), "live: None -> v0002",
                       "live: v0002 -> v0003", "shadow: None -> v0001"]
    header, *rows = out[4:]
    assert header.split() == ["version", "status", "kind", "data", "span", "max_drawdown", "sharpe_ratio", "registered"]
    assert [row.split()[:3] for row in rows] == [["v0001", "shadow", "cio"], ["v0002", "cio", "2015-01-02"],
                                                 ["v0003", "live", "cio"]]
    assert "0.9" in rows[1] and "2015-01-02 .. 2020-12-31" in rows[1]
    main(["--root", root, "show", "v0003"])
    shown = capsys.readouterr().out
    assert shown.startswith("v0003 (live)\n") and json.loads(shown.split("\n", 1)[1])["notes"] == "from the CLI"
    main(["--root", root, "rollback"])
    main(["--root", root, "shadow", "--clear"])
    main(["--root", root, "verify"])
    assert capsys.readouterr().out.splitlines() == ["live: v0003 -> v0002", "shadow: v0001 -> None",
                                                    "v0001: 3 files match their SHA-256",
                                                    "v0002: 3 files match their SHA-256",
                                                    "v0003: 3 files match their SHA-256"]


@pytest.mark.parametrize("argv, message", [
    (["promote", "v0009"], "error: unknown version 'v0009'"),
    (["rollback"], "error: nothing to roll back to"),
    (["register", "nowhere", "--meta", "missing.json"], "error: meta file missing.json does not exist"),
])
def test_cli_refusals_exit_2_with_one_line(registry, capsys, argv, message):
    with pytest.raises(SystemExit) as raised:
        main(["--root", str(registry.root), *argv])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and len(error.splitlines()) == 1


def test_cli_process_exit_code_and_no_traceback(registry):
    registry.promote("v0001")
    (registry.folder("v0002") / "policy.onnx").write_bytes(b"tampered")
    command = [sys.executable, "-m", "hrl_fund.registry", "--root", str(registry.root)]
    refused = subprocess.run([*command, "promote", "v0002"], capture_output=True, text=True, env=tool_env())
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: v0002: file policy.onnx has SHA-256") and len(refused.stderr.splitlines()) == 1
    assert "Traceback" not in refused.stderr
    listed = subprocess.run([*command, "list"], capture_output=True, text=True, env=tool_env())
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:2] == ["v0001", "live"]
    assert registry.live() == "v0001"
