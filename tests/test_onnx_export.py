"""hrl_fund.onnx_export: tiny trained CIO and multi-asset policies exported as the command line exports the pipeline's,
parity with torch and with the env's own targets on more than 1,000 observations, byte-stable re-export in another
process, a tampered graph and bad inputs refused, a parity failure stopping the command line, and forced liquidation
reproduced beside the graph."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tool_env
from hrl_fund import onnx_export
from hrl_fund.allocator import regime_features, synthetic_market, synthetic_streams
from hrl_fund.config import save_parquet, write_json
from hrl_fund.master import train_allocator
from hrl_fund.multi_asset_env import MultiAssetEnv, multi_asset_arrays, synthetic_panel
from hrl_fund.multi_asset_training import multi_asset_settings, train_fold, walk_forward_folds
from hrl_fund.onnx_export import (
    IntegrityError,
    MultiAssetWeights,
    OnnxPolicy,
    ParityError,
    _frozen_model,
    cio_env,
    export_pipeline,
    load_policy,
    main,
    multi_asset_env,
    parity,
    pipeline_models,
    record_observations,
    settle_target,
    torch_weights,
)

TINY_ALGO = {"n_steps": 32, "batch_size": 64, "n_epochs": 1, "total_timesteps": 256, "net_arch": [32, 32], "n_envs": 4}
TINY_TRANSFORMER = {"d_model": 16, "n_heads": 2, "dim_feedforward": 32}
CIO_SEGMENTS = {"cio_train": ["2017-01-03", "2018-12-31"], "cio_val": ["2019-01-01", "2019-12-31"]}
CIO_NAME, MULTI_NAME = "cio/seed_0", "multi_asset/agent/fold_0/seed_0"


def write_cio(root):
    "Stage 03's streams and regime and one tiny stage-04 CIO model (Transformer over days) under `root`"
    streams = synthetic_streams(n_days=1100, seed=3)
    save_parquet(streams, root / "outputs/cio/streams.parquet")
    save_parquet(regime_features(synthetic_market(n_days=1100, seed=3)), root / "outputs/cio/regime.parquet")
    cio = {"episode_length": 100, "window": 10, "lookback": 20, "max_weight": 0.4, "derisk_drawdown": 0.02,
           "progress_bar": False, "transformer": TINY_TRANSFORMER}
    train_allocator(streams, CIO_SEGMENTS, TINY_ALGO, cio, seed=0, out_dir=root / "models" / CIO_NAME,
                    regime=pd.read_parquet(root / "outputs/cio/regime.parquet"), policy="transformer")


def write_multi_asset(root):
    "Stage 04's saved panel, a minimal training report and one tiny levered multi-asset fold model under `root`"
    prices, classes = synthetic_panel(n_days=1100, seed=1)
    meta = pd.DataFrame({"asset_class": classes}).rename_axis("ticker")
    settings = multi_asset_settings(TINY_ALGO, {"progress_bar": False, "episode_length": 100, "max_leverage": 1.5,
                                                "derisk_drawdown": 0.05, "transformer": TINY_TRANSFORMER})
    arrays = multi_asset_arrays(prices, meta, feature_names=settings["env"]["feature_names"],
                                market=settings["env"]["market"])
    fold = walk_forward_folds(prices.index, ("2018-09-03", str(prices.index[-1].date())), n_folds=1, validation_days=40,
                              train_start="2015-01-02", window=5)[0]
    train_fold(arrays, fold, settings, seed=0, policy="transformer", out_dir=root / "models" / MULTI_NAME)
    save_parquet(prices, root / "outputs/multi_asset/prices.parquet")
    save_parquet(meta, root / "outputs/multi_asset/meta.parquet")
    write_json(root / "reports/multi_asset_training.json", {"env": settings["env"], "folds": [fold]})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    "A pipeline root with both tiny models, exported and checked by the command line's code once"
    root = tmp_path_factory.mktemp("onnx_root")
    write_cio(root)
    write_multi_asset(root)
    report = export_pipeline(root, root / "onnx", root / "reports/onnx_parity.json", progress=False, repeats=50)
    return {"root": root, "out": root / "onnx", "report": report,
            "report_path": root / "reports/onnx_parity.json"}


def test_every_policy_matches_torch_and_the_env_on_over_1000_observations(pipeline):
    report = pipeline["report"]
    assert report["passed"] and report["failures"] == []
    assert sorted(report["policies"]) == [CIO_NAME, MULTI_NAME]
    for name, entry in report["policies"].items():
        assert entry["parity"]["n"] >= 1000 and sum(entry["observations"].values()) == entry["parity"]["n"]
        assert 0 <= entry["parity"]["max_abs_diff"] <= 1e-5
        assert 0 <= entry["env_max_abs_diff"] <= 1e-5
        sidecar = json.loads((pipeline["out"] / name / "policy.json").read_text())
        assert sidecar["onnx_sha256"] == entry["onnx_sha256"]
        assert sidecar["sources"] == onnx_export.source_hashes(pipeline["root"] / "models" / name)
    last_day = str(pd.bdate_range("2017-01-03", periods=1100)[-1].date())  # the test span: the streams after validation
    assert report["policies"][CIO_NAME]["spans"]["test"] == ["2020-01-01", last_day]
    assert list(report["policies"][MULTI_NAME]["observations"]) == ["train", "validation", "test"]


def test_onnx_answers_one_observation_faster_than_torch(pipeline):
    for timing in pipeline["report"]["timings"]["policies"].values():
        assert 0 < timing["onnxruntime_us"] < timing["torch_us"]


def test_the_command_line_is_byte_stable_in_a_new_process(pipeline, tmp_path):
    root = tmp_path / "root"  # the multi-asset half of the pipeline (the CIO is re-exported by the parity failure test)
    for folder in ("outputs/multi_asset", "reports", "models/multi_asset"):
        (root / folder).parent.mkdir(parents=True, exist_ok=True)
        (root / folder).symlink_to(pipeline["root"] / folder)
    result = subprocess.run([sys.executable, "-m", "hrl_fund.onnx_export", "--root", str(root), "--out",
                             str(tmp_path / "onnx"), "--report", str(tmp_path / "report.json"), "--no-progress",
                             "--repeats", "20"], env=tool_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for file in ("policy.onnx", "policy.json"):
        assert (tmp_path / "onnx" / MULTI_NAME / file).read_bytes() == (pipeline["out"] / MULTI_NAME / file).read_bytes()
    again = json.loads((tmp_path / "report.json").read_text())
    first = json.loads(pipeline["report_path"].read_text())
    assert again["policies"] == {MULTI_NAME: first["policies"][MULTI_NAME]}  # everything but the timings
    assert set(again["timings"]["policies"]) == {MULTI_NAME} and "max |onnx - torch|" in result.stdout


def test_the_served_weights_are_the_torch_paths_for_any_batch_size(pipeline):
    root = pipeline["root"]
    env = cio_env(root, CIO_SEGMENTS["cio_val"])
    run = record_observations(env, root / "models" / CIO_NAME)
    policy, module = OnnxPolicy(pipeline["out"] / CIO_NAME), load_policy(root / "models" / CIO_NAME)
    reference = torch_weights(module, run["observation"])
    np.testing.assert_allclose(reference, run["target"], atol=1e-6)
    for rows in (slice(0, 1), slice(0, 3), slice(None)):
        np.testing.assert_allclose(policy.weights(run["observation"][rows]), reference[rows], atol=1e-5)
    np.testing.assert_allclose(policy.weights(run["observation"][4]), reference[4], atol=1e-5)
    np.testing.assert_allclose(policy.weights(run["observation"]).sum(axis=1), 1.0, atol=1e-12)


def test_the_torch_path_is_sb3s_deterministic_predict(pipeline):
    model_dir = pipeline["root"] / "models" / MULTI_NAME
    env = multi_asset_env(pipeline["root"], json.loads((model_dir / "model.json").read_text())["fold"]["test"])
    observations = record_observations(env, model_dir)["observation"]
    model, statistics = _frozen_model(model_dir, env)
    expected = np.stack([model.predict(statistics.normalize_obs(row), deterministic=True)[0] for row in observations])
    with torch.inference_mode():
        actions = load_policy(model_dir, cash_index=env.cash_index).action(torch.as_tensor(observations)).numpy()
    np.testing.assert_allclose(actions, expected, atol=1e-6)
    assert expected.shape[1] == env.n_assets + 1  # the leverage action


def test_a_tampered_or_swapped_graph_is_refused(pipeline, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(pipeline["out"] / CIO_NAME, folder)
    data = bytearray((folder / "policy.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "policy.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="changed or swapped"):
        OnnxPolicy(folder)
    shutil.copy(pipeline["out"] / MULTI_NAME / "policy.onnx", folder / "policy.onnx")
    with pytest.raises(IntegrityError, match="changed or swapped"):
        OnnxPolicy(folder / "policy.onnx")
    (folder / "policy.json").unlink()
    with pytest.raises(FileNotFoundError, match="policy.json"):
        OnnxPolicy(folder)


def test_bad_observations_and_masks_are_refused(pipeline):
    cio, multi = OnnxPolicy(pipeline["out"] / CIO_NAME), OnnxPolicy(pipeline["out"] / MULTI_NAME)
    good = np.zeros(cio.size, dtype=np.float32)
    with pytest.raises(ValueError, match=rf"shape \({cio.size - 1},\)"):
        cio.weights(good[:-1])
    with pytest.raises(ValueError, match="n >= 1"):
        cio.weights(np.zeros((0, cio.size)))
    with pytest.raises(ValueError, match="float array"):
        cio.weights(np.array(["x"] * cio.size))
    bad = np.tile(good, (3, 1))
    bad[2, -2] = np.inf
    with pytest.raises(ValueError, match=r"row 2 .* position %d \(drawdown\)" % (cio.size - 2)):
        cio.weights(bad)
    with pytest.raises(ValueError, match="takes no tradable mask"):
        cio.weights(good, np.ones(len(cio.assets), bool))
    observation = np.zeros(multi.size, dtype=np.float32)
    mask = np.ones(len(multi.assets), bool)
    assert multi.weights(observation, mask).shape == (len(multi.assets),)
    with pytest.raises(ValueError, match="needs tradable"):
        multi.weights(observation)
    with pytest.raises(ValueError, match="bool or 0/1"):
        multi.weights(observation, np.full(len(multi.assets), 2))
    with pytest.raises(ValueError, match="must be"):
        multi.weights(np.tile(observation, (2, 1)), mask)
    mask[multi.cash_index] = False
    with pytest.raises(ValueError, match="cash is always tradable"):
        multi.weights(observation, mask)


def test_a_masked_instrument_gets_no_weight(pipeline):
    multi = OnnxPolicy(pipeline["out"] / MULTI_NAME)
    observation = np.zeros(multi.size, dtype=np.float32)
    coin = multi.assets.index("COIN")
    mask = np.ones(len(multi.assets), bool)
    mask[coin] = False
    weights = multi.weights(observation, mask)
    assert weights[coin] == 0.0 and abs(weights.sum() - 1) < 1e-12
    assert multi.weights(observation, np.ones(len(multi.assets), bool))[coin] > 0


def test_a_parity_failure_writes_the_report_and_exits_non_zero(pipeline, tmp_path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(pipeline["root"] / "outputs/cio", root / "outputs/cio")
    shutil.copytree(pipeline["root"] / "models/cio", root / "models/cio")
    real = onnx_export.torch_weights
    monkeypatch.setattr(onnx_export, "torch_weights", lambda *args: real(*args) + 1e-3)
    with pytest.raises(SystemExit, match=r"parity failed .*cio/seed_0: onnxruntime and torch differ by 0.001"):
        main(["--root", str(root), "--out", str(tmp_path / "onnx"), "--report", str(tmp_path / "report.json"),
              "--no-progress", "--repeats", "5"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["passed"] and report["policies"] == {} and "cio/seed_0" in report["failures"][0]
    for file in ("policy.onnx", "policy.json"):  # the same model re-exported: the same bytes
        assert (tmp_path / "onnx" / CIO_NAME / file).read_bytes() == (pipeline["out"] / CIO_NAME / file).read_bytes()
    with pytest.raises(ParityError, match="differ"):
        parity(root / "models" / CIO_NAME, pipeline["out"] / CIO_NAME, np.zeros((2, OnnxPolicy(pipeline["out"] / CIO_NAME).size)))


def test_too_few_observations_or_no_models_stop_the_command_line(pipeline, tmp_path):
    with pytest.raises(SystemExit, match="fewer than 5000"):
        main(["--root", str(pipeline["root"]), "--out", str(tmp_path / "onnx"), "--report", str(tmp_path / "r.json"),
              "--no-progress", "--min-observations", "5000"])
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "onnx").exists()
    with pytest.raises(SystemExit, match="no trained policy"):
        main(["--root", str(tmp_path), "--out", str(tmp_path / "onnx"), "--report", str(tmp_path / "r.json")])


def test_pipeline_models_are_listed_in_a_fixed_natural_order(tmp_path):
    for folder in ("models/cio/seed_10", "models/cio/seed_2", "models/cio/ablation/seed_0",
                   "models/multi_asset/agent/fold_1/seed_0", "models/multi_asset/agent/fold_0/seed_0"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / ("allocator.json" if "cio" in folder else "model.json")).write_text("{}")
    (tmp_path / "models/cio/seed_3").mkdir()  # no settings file: not a trained folder
    listed = [path.relative_to(tmp_path / "models").as_posix() for _, path in pipeline_models(tmp_path)]
    assert listed == ["cio/seed_2", "cio/seed_10", "cio/ablation/seed_0", "multi_asset/agent/fold_0/seed_0",
                      "multi_asset/agent/fold_1/seed_0"]


def test_a_forced_liquidation_is_reproduced_beside_the_graph():
    prices, classes = synthetic_panel(n_days=400, seed=2)
    stock = prices.columns.get_loc("STOCK_A")
    prices.iloc[300:, stock] *= 0.2  # an 80% gap
    env = MultiAssetEnv(prices, classes, window=5, max_leverage=3.0, maintenance_margin=0.3, derisk_drawdown=None)
    action = np.where(np.arange(env.n_assets + 1) == stock, 1.0, -1.0).astype(np.float32)
    action[-1] = 1.0  # 3x leverage
    observation, _ = env.reset(seed=0)
    head = MultiAssetWeights(env.n_assets, env.cash_index, 0.5, 5.0, None, 0.25, 3.0)
    while True:
        tradable = env.arrays["tradable"][env.book.rows[0]]
        equity_before = float(env.book.equity[0])
        with torch.inference_mode():
            target = head(torch.as_tensor(action[None]), torch.as_tensor(observation[None, -2]),
                          torch.as_tensor(tradable[None])).numpy()[0]
        observation, _, terminated, truncated, info = env.step(action)
        marked = equity_before + info["gross_pnl"] - info["financing"]
        gross = marked / info["margin_ratio"]
        settled = settle_target(target, marked, gross, cash_index=env.cash_index, max_leverage=3.0,
                                maintenance_margin=0.3)
        np.testing.assert_allclose(settled, info["position"], atol=1e-9)
        if terminated or truncated:
            break
    assert info["liquidated"] and settled[env.cash_index] == 1.0 and target[stock] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="finite"):
        settle_target(target, np.nan, 1.0, cash_index=env.cash_index, max_leverage=3.0, maintenance_margin=0.3)
