"The multi-asset evaluation on synthetic stand-ins for the training stage's files: benchmarks through the env, tables, files"
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hrl_fund.config import write_json
from hrl_fund.evaluation import evaluate, read_stage_inputs, results_report
from hrl_fund.evaluation import write_synthetic_inputs as write_fund_inputs
from hrl_fund.metrics import sharpe_ratio
from hrl_fund.multi_asset_results import (
    INPUT_FILES,
    OUTPUT_FILES,
    SMOKE_ENV,
    TABLE_LABELS,
    TABLE_METRICS,
    evaluate_multi_asset,
    multi_asset_results,
    multi_asset_table,
    read_multi_asset_inputs,
    run_benchmarks,
    stress_analysis,
    write_synthetic_inputs,
)
from hrl_fund.portfolios import BENCHMARKS

SEEDS = [0, 1]
FUND_SEGMENTS = {"specialist_train": ["2012-01-03", "2014-12-31"], "specialist_val": ["2015-01-02", "2015-12-31"],
                 "cio_train": ["2016-01-04", "2017-06-30"], "cio_val": ["2017-07-03", "2017-12-29"],
                 "test": ["2018-01-02", "2018-12-31"]}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    "Synthetic multi-asset inputs plus a fund reports/results.json from the fund's own smoke evaluation"
    folder = tmp_path_factory.mktemp("multi_asset")
    write_synthetic_inputs(folder, seeds=SEEDS)
    fund_folder = tmp_path_factory.mktemp("fund")
    write_fund_inputs(fund_folder, FUND_SEGMENTS, SEEDS)
    fund = evaluate(read_stage_inputs(fund_folder, SEEDS), FUND_SEGMENTS, cost_bps=5.0, window=126, refit_every=21)
    write_json(folder / "reports/results.json", results_report(fund))
    return folder


@pytest.fixture(scope="module")
def inputs(root) -> dict:
    return read_multi_asset_inputs(root, SEEDS)


@pytest.fixture(scope="module")
def evaluation(inputs) -> dict:
    return evaluate_multi_asset(inputs, window=126)


def test_benchmarks_cover_exactly_the_agent_test_dates(root, evaluation):
    agent_dates = pd.read_parquet(root / INPUT_FILES["test_returns"]).index
    assert list(evaluation["runs"]) == ["agent", "ablation", *BENCHMARKS]
    for name in BENCHMARKS:
        run = evaluation["runs"][name]
        assert run["returns"].index.equals(agent_dates)
        assert run["weights"]["run"].index.equals(agent_dates)
        assert run["costs"]["run"].index.equals(agent_dates)
        assert np.isfinite(run["returns"].to_numpy()).all()


def test_benchmark_costs_are_positive_and_buy_and_hold_trades_once(evaluation):
    for name in BENCHMARKS:
        costs = evaluation["runs"][name]["costs"]["run"]
        assert (costs["cost"] >= 0).all() and costs["cost"].sum() > 0, name
    buy_hold = evaluation["runs"]["equal_weight_buy_hold"]["costs"]["run"]
    traded = buy_hold.index[buy_hold["turnover"] > 0]
    assert list(traded) == [evaluation["dates"][0]]
    assert (buy_hold["cost"].iloc[1:] == 0).all()


def test_benchmark_through_the_env_equals_a_hand_computation():
    dates = pd.bdate_range("2021-01-04", periods=4, name="date")
    prices = pd.DataFrame({"A": [100.0, 100.0, 110.0, 99.0], "CASH": [100.0, 100.01, 100.02, 100.03]}, index=dates)
    costs = {"equity": {"commission_bps": 10.0, "half_spread_bps": 5.0, "slippage_bps": 5.0, "impact": 0.5,
                        "liquidity": 100.0}}
    settings = {**SMOKE_ENV, "costs": costs, "window": 1, "market": None, "max_weight": 0.5,
                "derisk_drawdown": 0.1, "max_leverage": 1.0}
    run = run_benchmarks(prices, {"A": "equity", "CASH": "cash"}, settings, dates[1:],
                         benchmarks=("equal_weight_buy_hold",))["equal_weight_buy_hold"]
    cash_returns = prices["CASH"].pct_change().to_numpy()[1:]  # (3,)
    equity_1 = 1.0 + cash_returns[0]  # day 1 is earned in cash; the book is bought at its close
    notional = 0.5 * equity_1
    fallback_volatility = 0.02  # the env's daily volatility under five days of returns
    cost_1 = notional * (20e-4 + 0.5 * fallback_volatility / math.sqrt(100.0) * math.sqrt(notional))
    after = equity_1 - cost_1
    stock, cash = 0.5 * after, 0.5 * after
    equity_2 = stock * 1.1 + cash * (1 + cash_returns[1])
    equity_3 = stock * 1.1 * 0.9 + cash * (1 + cash_returns[1]) * (1 + cash_returns[2])
    np.testing.assert_allclose(run["returns"].to_numpy(), [after - 1, equity_2 / after - 1, equity_3 / equity_2 - 1],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(run["costs"]["cost"].to_numpy(), [cost_1, 0.0, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(run["weights"].to_numpy()[1], [0.5, 0.5], rtol=0, atol=1e-12)


def test_table_has_mean_std_cells_over_seeds(evaluation):
    frame = multi_asset_table(evaluation)
    assert list(frame.index) == [TABLE_LABELS[metric] for metric in TABLE_METRICS]
    sharpes = [sharpe_ratio(evaluation["runs"]["agent"]["returns"][f"seed_{seed}"]) for seed in SEEDS]
    expected = (r"\begin{tabular}[t]{@{}r@{}}$" + f"{np.mean(sharpes):.2f}" + r"$\\ $\pm " + f"{np.std(sharpes, ddof=1):.2f}"
                + r"$\end{tabular}")  # the mean above the std in one cell
    assert frame.loc["Sharpe ratio", "Agent"] == expected
    assert all(r"\pm" in cell for cell in frame["Agent"]) and all(r"\pm" in cell for cell in frame["Ablation"])
    assert all(isinstance(cell, float) for cell in frame["Risk par."])


def test_stress_table_classes_sum_consistently(inputs, evaluation):
    stress = stress_analysis(evaluation, inputs["arrays"], n_bootstrap=200)
    frame = stress["frame"]
    classes = frame.drop(index="Total")
    assert classes["Calm"].sum() == pytest.approx(100.0, abs=1e-9)
    assert classes["Stress"].sum() == pytest.approx(100.0, abs=1e-9)
    assert classes["Shift"].sum() == pytest.approx(0.0, abs=1e-9)
    assert (classes["Stress"] - classes["Calm"] - classes["Shift"]).abs().max() < 1e-9
    assert frame.loc["Total", "Calm"] == pytest.approx(100.0, abs=1e-9)
    assert stress["info"]["stress_days"] + stress["info"]["calm_days"] == len(evaluation["dates"])


def test_files_written(root, tmp_path):
    result = multi_asset_results(root, tmp_path, seeds=SEEDS, window=126, n_bootstrap=200)
    assert result["files"] == sorted(OUTPUT_FILES.values())
    for path in result["files"]:
        assert (tmp_path / path).stat().st_size > 0, path
    numbers = (tmp_path / OUTPUT_FILES["numbers"]).read_text()
    assert r"\newcommand{\MultiAssetNumSeeds}{2}" in numbers
    assert r"\newcommand{\HierarchyFundTestStart}{2018-01-02}" in numbers
    assert (tmp_path / OUTPUT_FILES["equity_figure"]).read_bytes().startswith(b"%PDF")
    assert r"\toprule" in (tmp_path / OUTPUT_FILES["hierarchy_table"]).read_text()
    report = json.loads((tmp_path / OUTPUT_FILES["report"]).read_text())
    assert report["test"]["days"] == len(result["evaluation"]["dates"])
    assert result["metrics"]["multi_asset_agent_sharpe_ratio_mean"] == pytest.approx(
        result["evaluation"]["summary"]["agent"].loc["sharpe_ratio", "mean"])
    assert not list(tmp_path.rglob("*.tmp*"))  # atomic writes leave no temporary file


@pytest.mark.parametrize("name", sorted(INPUT_FILES))
def test_missing_input_names_the_file_and_the_stage(root, tmp_path, name):
    copy = shutil.copytree(root, tmp_path / "root")
    (copy / INPUT_FILES[name]).unlink()
    with pytest.raises(FileNotFoundError, match=rf"{Path(INPUT_FILES[name]).name} is missing: it is written by stage "
                                                r"train_multi_asset"):
        read_multi_asset_inputs(copy, SEEDS)


def test_missing_fund_results_names_stage_05(root, tmp_path):
    copy = shutil.copytree(root, tmp_path / "root")
    (copy / "reports/results.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"results.json is missing: it is written by stage 05"):
        multi_asset_results(copy, tmp_path / "out", window=126, n_bootstrap=50)


def test_out_of_step_files_are_refused(root, tmp_path):
    copy = shutil.copytree(root, tmp_path / "root")
    path = copy / INPUT_FILES["test_returns"]
    (pd.read_parquet(path) + 1e-5).to_parquet(path)
    with pytest.raises(ValueError, match="out of step"):
        read_multi_asset_inputs(copy, SEEDS)
