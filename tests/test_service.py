"The inference service as a desk meets it: a real `python -m hrl_fund.service serve` process on 127.0.0.1, a real client."
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from hrl_fund.allocator import regime_features
from hrl_fund.master import run_allocator
from hrl_fund.registry import Registry, RegistryError
from hrl_fund.service import (
    DEMO_SEGMENTS,
    ModelSlot,
    ServedModel,
    allocate_payload,
    load_settings,
    publish,
    write_demo_root,
)
from hrl_fund.serving_checks import ServiceProcess, load_test, replay

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    "A pipeline root with stage 03's files for the synthetic demo set, two tiny CIO seeds and a registry (v0001 live)"
    root = write_demo_root(tmp_path_factory.mktemp("service"), seeds=(0, 1))
    assert publish(root / "models/cio/seed_0", root / "registry", root=root) == "v0001"
    assert publish(root / "models/cio/seed_1", root / "registry", root=root, promote=False) == "v0002"
    return root


def inputs(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    streams = pd.read_parquet(root / "outputs/cio/streams.parquet")
    levels = pd.read_parquet(root / "outputs/data/prices.parquet").reindex(streams.index)
    spec = json.loads((Registry(root / "registry").load_files("v0001") / "service.json").read_text())
    return streams, levels, spec


def body_for(root: Path, day: str = "2019-03-01", **portfolio) -> dict:
    streams, levels, spec = inputs(root)
    row = int(streams.index.get_indexer([pd.Timestamp(day)])[0])
    return allocate_payload(streams[spec["assets"]], levels, row, spec, **portfolio)


@pytest.fixture(scope="module")
def service(root):
    "The real service process on the module's registry, with a decision log"
    with ServiceProcess(root / "registry", params=REPO / "params.yaml", log=root / "logs/decisions.jsonl") as url:
        yield url


def test_health_model_and_openapi(service):
    health = httpx.get(f"{service}/health").json()
    assert health == {"status": "ok", "model_version": "v0001", "shadow_version": None, "detail": None}
    model = httpx.get(f"{service}/model").json()
    assert model["live"]["version"] == "v0001" and model["live"]["data_span"] == DEMO_SEGMENTS["cio_train"]
    assert set(model["live"]["files"]) == {"policy.onnx", "policy.json", "service.json", "reference.npy"}
    schema = httpx.get(f"{service}/openapi.json").json()
    assert {"AllocateRequest", "AllocateResponse", "Portfolio"} <= set(schema["components"]["schemas"])
    assert httpx.get(f"{service}/docs").status_code == 200


def test_served_weights_are_the_backtests(root, service):
    answer = httpx.post(f"{service}/allocate", json=body_for(root)).json()
    assert answer["model_version"] == "v0001" and answer["date"] == "2019-03-01" and answer["controls_fired"] == []
    streams, levels, spec = inputs(root)
    _, held = run_allocator(root / "models/cio/seed_0", streams, ("2019-03-04", "2019-03-05"),
                            regime=regime_features(levels))
    served = np.array([answer["weights"][name] for name in spec["assets"]])
    assert np.abs(served - held.iloc[1].to_numpy()).max() <= 1e-6
    assert abs(served.sum() - 1.0) < 1e-9


def _edit(body: dict, path: str, value) -> dict:
    copy = json.loads(json.dumps(body))
    keys = path.split(".")
    target = copy
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[int(keys[-1]) if isinstance(target, list) else keys[-1]] = value
    return copy


BAD = [  # (case, edit(body) -> payload, expected status, expected loc prefix, words in the message)
    ("nan", lambda b: json.dumps(b).replace('"trend": [', '"trend": [NaN, ', 1).encode(), 422, ["body", "returns", "trend"], ""),
    ("inf", lambda b: json.dumps(b).replace('"VIX": [', '"VIX": [Infinity, ', 1).encode(), 422, ["body", "market", "VIX"], ""),
    ("short series", lambda b: _edit(b, "returns.carry", b["returns"]["carry"][:-1]), 422, ["body", "returns", "carry"], "values"),
    ("unknown ticker", lambda b: {**b, "returns": {**b["returns"], "BTC": b["returns"]["trend"]}}, 422,
     ["body", "returns", "BTC"], "unknown sleeve"),
    ("missing ticker", lambda b: {**b, "returns": {k: v for k, v in b["returns"].items() if k != "value"}}, 422,
     ["body", "returns"], "value"),
    ("unordered", lambda b: _edit(b, "dates.5", b["dates"][3]), 422, ["body", "dates", 5], "after"),
    ("duplicate date", lambda b: _edit(b, "dates.5", b["dates"][4]), 422, ["body", "dates", 5], "strictly increase"),
    ("bad date", lambda b: _edit(b, "dates.0", "01/02/2019"), 422, ["body", "dates", 0], "YYYY-MM-DD"),
    ("future as_of", lambda b: {**b, "as_of": "2019-02-01"}, 422, ["body", "dates"], "after as_of"),
    ("bad as_of", lambda b: {**b, "as_of": "yesterday"}, 422, ["body", "as_of"], "YYYY-MM-DD"),
    ("short history", lambda b: {**b, "dates": b["dates"][5:], "market": {k: v[5:] for k, v in b["market"].items()}}, 422,
     ["body", "dates"], "at least"),
    ("no market", lambda b: {k: v for k, v in b.items() if k != "market"}, 422, ["body", "market"], "SP500"),
    ("extra market series", lambda b: {**b, "market": {**b["market"], "DAX": b["market"]["VIX"]}}, 422,
     ["body", "market", "DAX"], "unknown"),
    ("zero level", lambda b: _edit(b, "market.SP500.7", 0.0), 422, ["body", "market", "SP500", 7], "positive"),
    ("ruinous return", lambda b: _edit(b, "returns.trend.2", -1.0), 422, ["body", "returns", "trend", 2], "100%"),
    ("weights off simplex", lambda b: _edit(b, "portfolio.weights", {"cash": 0.5}), 422, ["body", "portfolio", "weights"], "sum"),
    ("negative weight", lambda b: _edit(b, "portfolio.weights", {"cash": 1.5, "carry": -0.5}), 422,
     ["body", "portfolio", "weights", "carry"], "negative"),
    ("unknown weight", lambda b: _edit(b, "portfolio.weights", {"cash": 1.0, "gold": 0.0}), 422,
     ["body", "portfolio", "weights", "gold"], "unknown"),
    ("drawdown 1", lambda b: _edit(b, "portfolio.drawdown", 1.0), 422, ["body", "portfolio", "drawdown"], ""),
    ("too many returns", lambda b: _edit(b, "portfolio.recent_returns", [0.0] * 21), 422,
     ["body", "portfolio", "recent_returns"], ""),
    ("string return", lambda b: _edit(b, "returns.trend.0", "0.01x"), 422, ["body", "returns", "trend", 0], ""),
    ("unknown field", lambda b: {**b, "leverage": 3}, 422, ["body", "leverage"], ""),
    ("not an object", lambda b: [1, 2, 3], 422, ["body"], ""),
    ("broken JSON", lambda b: b'{"dates": [', 422, ["body"], ""),
]


@pytest.mark.parametrize("case,edit,status,loc,words", BAD, ids=[case[0] for case in BAD])
def test_bad_input_is_a_4xx_naming_the_field(root, service, case, edit, status, loc, words):
    payload = edit(body_for(root))
    if isinstance(payload, bytes):
        response = httpx.post(f"{service}/allocate", content=payload, headers={"content-type": "application/json"})
    else:
        response = httpx.post(f"{service}/allocate", json=payload)
    assert response.status_code == status, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][: len(loc)] == loc, detail
    assert words in detail["msg"], detail


def test_oversized_body_is_413(service):
    response = httpx.post(f"{service}/allocate", content=b"[" + b"0," * 200_000 + b"0]",
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_controls_fire_with_the_documented_safe_actions(root, service):
    deep = httpx.post(f"{service}/allocate", json=body_for(root, drawdown=0.3)).json()
    assert deep["controls_fired"][0] == "drawdown" and deep["safe_action"] == "derisk_to_cash"
    assert deep["weights"]["cash"] == 1.0 and deep["policy_weights"]["cash"] < 1.0
    weights = {"trend": 0.4, "carry": 0.3, "value": 0.0, "cash": 0.3}
    late = httpx.post(f"{service}/allocate", json={**body_for(root, weights=np.array(list(weights.values()))),
                                                   "as_of": "2019-03-12"}).json()
    assert late["controls_fired"][0] == "stale_data" and late["safe_action"] == "hold"
    assert late["weights"] == pytest.approx(weights)
    body = body_for(root)
    body["returns"]["carry"][-1] = None
    gap = httpx.post(f"{service}/allocate", json=body).json()
    assert gap["controls_fired"] == ["missing_data"] and gap["safe_action"] == "hold" and gap["policy_weights"] is None
    metrics = httpx.get(f"{service}/metrics").text
    assert 'hrl_fund_controls_fired_total{control="drawdown"}' in metrics


def test_shadow_rollback_and_a_tampered_version_never_served(root, service):
    registry = Registry(root / "registry")
    registry.shadow("v0002")
    both = httpx.post(f"{service}/allocate", json=body_for(root)).json()
    assert (both["model_version"], both["shadow_version"]) == ("v0001", "v0002")
    assert both["shadow_weights"] != both["weights"]
    registry.promote("v0002")
    assert httpx.post(f"{service}/allocate", json=body_for(root)).json()["model_version"] == "v0002"
    registry.rollback()
    assert httpx.post(f"{service}/allocate", json=body_for(root)).json()["model_version"] == "v0001"
    onnx_file = registry.folder("v0002") / "policy.onnx"
    original = onnx_file.read_bytes()
    onnx_file.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        with pytest.raises(RegistryError, match="policy.onnx"):
            registry.promote("v0002")
        with pytest.raises(RegistryError, match="v0009"):
            registry.promote("v0009")
        assert registry.live() == "v0001"
        assert httpx.post(f"{service}/allocate", json=body_for(root)).json()["model_version"] == "v0001"
    finally:
        onnx_file.write_bytes(original)
    lines = [json.loads(line) for line in (root / "logs/decisions.jsonl").read_text().splitlines()]
    assert any(line.get("shadow_version") == "v0002" and line.get("shadow_weights") for line in lines)


def test_a_model_failing_its_checks_is_not_served(root, tmp_path):
    registry_copy = tmp_path / "registry"
    subprocess.run(["cp", "-r", str(root / "registry"), str(registry_copy)], check=True)
    settings = load_settings(REPO / "params.yaml", registry=str(registry_copy))
    state_path = registry_copy / "registry.json"
    original_state = state_path.read_text()
    # the registry's record says the model was made for another env than its sidecar: refused, nothing live
    state = json.loads(original_state)
    live = state["live"]
    state["versions"][live]["env_fingerprint"]["observation_space"] = "Box(-1.0, 1.0, (3,), float32)"
    state_path.write_text(json.dumps(state))
    slot = ModelSlot(Registry(registry_copy), settings.monitoring)
    assert slot.live is None and "observation_space" in slot.problem
    # a changed model file: the service process starts, answers 503 with the reason, and never allocates
    state_path.write_text(original_state)
    (Registry(registry_copy).folder(live) / "policy.onnx").write_bytes(b"not the model")
    with ServiceProcess(registry_copy, params=REPO / "params.yaml") as url:
        health = httpx.get(f"{url}/health")
        assert health.status_code == 503 and "policy.onnx" in health.json()["detail"]
        response = httpx.post(f"{url}/allocate", json=body_for(root))
        assert response.status_code == 503 and "policy.onnx" in response.json()["detail"]


def test_token_and_rate_limit(root, tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["serving"]["rate_limit"] = {"requests": 5, "per_seconds": 60}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {params["serving"]["token_env"]: "let-me-in"}
    with ServiceProcess(root / "registry", params=tmp_path / "params.yaml", env=env) as url:
        assert httpx.get(f"{url}/health").status_code == 200  # open to probes
        assert httpx.post(f"{url}/allocate", json=body_for(root)).status_code == 401
        assert httpx.get(f"{url}/metrics").status_code == 401
        good = httpx.post(f"{url}/allocate", json=body_for(root), headers={"Authorization": "Bearer let-me-in"})
        assert good.status_code == 200
        statuses = [httpx.get(f"{url}/health").status_code for _ in range(3)]
        assert statuses[-1] == 429


def test_replay_parity_on_a_short_segment(root, service, tmp_path):
    out = tmp_path / "replay.parquet"
    result = replay(service, root / "models/cio/seed_0", root=root, segment=("2019-01-02", "2019-03-29"), out=out,
                    progress=False)
    assert result["days"] >= 55 and result["max_abs_difference"] <= 1e-6
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["served", "offline"] and len(frame) == result["days"]
    if not result["controls_fired"]:
        assert np.abs(frame["served"] - frame["offline"]).max() < 1e-9


def test_load_test_is_bounded_and_all_200(root, service):
    result = load_test(service, body_for(root), n_requests=60, max_seconds=20, concurrency=4)
    assert result["sequential"]["requests"] == 30 and result["concurrent"]["requests"] == 30
    assert result["concurrent"]["statuses"] == {"200": 30}
    assert 0 < result["sequential"]["p50_ms"] <= result["sequential"]["p99_ms"]
    with pytest.raises(ValueError, match="127.0.0.1"):
        load_test("http://example.com", {}, n_requests=1)


def test_bad_settings_are_refused():
    for override, words in ((dict(port=-1), "port"), (dict(max_body_bytes=10), "max_body_bytes"),
                            (dict(monitoring={"psi_threshold": 0.0}), "psi_threshold"),
                            (dict(monitoring={"ks_threshold": 1.01}), "ks_threshold"),
                            (dict(controls={"max_weight": 2}), "max_weight"), (dict(prot=1), "prot")):
        with pytest.raises(ValueError, match=words):
            load_settings(REPO / "params.yaml", **override)


def test_cli_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hrl_fund.serving_checks", "bench", "--root", str(tmp_path),
                             "--registry", str(tmp_path / "none")], capture_output=True, text=True,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 2 and result.stderr.startswith("error:") and "Traceback" not in result.stderr


def test_the_committed_default_registry_serves():
    registry = Registry(REPO / "registry")
    live = registry.live()
    assert live is not None, "the committed registry has no live version"
    model = ServedModel(registry, live)  # every hash, the fingerprint and the ONNX file check out
    spec = model.spec
    generator = np.random.default_rng(0)
    dates = pd.bdate_range("2021-01-04", periods=spec["history_days"])
    streams = pd.DataFrame(generator.normal(0, 0.01, (len(dates), len(spec["assets"]))), index=dates,
                           columns=spec["assets"])
    levels = pd.DataFrame({spec["index_column"]: 3000 * np.exp(np.cumsum(generator.normal(0, 0.01, len(dates)))),
                           spec["vix_column"]: 20 + generator.uniform(-5, 5, len(dates))}, index=dates)
    with ServiceProcess(REPO / "registry", params=REPO / "params.yaml") as url:
        assert httpx.get(f"{url}/health").json()["model_version"] == live
        answer = httpx.post(f"{url}/allocate", json=allocate_payload(streams, levels, len(dates) - 1, spec)).json()
    assert abs(sum(answer["weights"].values()) - 1) < 1e-9 and set(answer["weights"]) == set(spec["assets"])
