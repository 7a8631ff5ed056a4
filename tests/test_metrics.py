"""Known-answer tests for hrl_fund.evaluation: metrics on hand-computed series, the equal-weight fund, and the paper writers."""

import math

import numpy as np
import pandas as pd
import pytest

from hrl_fund import evaluation
from hrl_fund.evaluation import (
    METRICS,
    annual_return,
    annual_volatility,
    calmar_ratio,
    equal_weight_returns,
    latex_macros,
    latex_table,
    macro_name,
    max_drawdown,
    performance_table,
    profit_factor,
    seed_summary,
    sharpe_ratio,
    sortino_ratio,
    total_return,
    win_rate,
)

# mean 0.005, sample variance 0.0003, downside second moment (0.0001 + 0.0001) / 4
TOY = np.array([0.02, -0.01, 0.02, -0.01])


def test_total_return_compounds():
    assert total_return(np.array([0.1, -0.1])) == pytest.approx(-0.01)
    assert total_return(pd.Series([0.5, np.nan, 1.0])) == pytest.approx(2.0)  # 1.5 * 2 - 1, NaN dropped


def test_annual_return_is_cagr():
    assert annual_return(np.full(126, 0.001)) == pytest.approx(1.001**252 - 1)
    assert annual_return(np.array([0.21]), periods_per_year=2) == pytest.approx(1.21**2 - 1)
    assert annual_return(np.array([0.5, -1.0])) == -1.0  # wealth gone


def test_annual_volatility_sample_std():
    assert annual_volatility(TOY, periods_per_year=1) == pytest.approx(math.sqrt(0.0003))
    assert annual_volatility(TOY, periods_per_year=4) == pytest.approx(2 * math.sqrt(0.0003))


def test_sharpe_and_sortino_known_answers():
    assert sharpe_ratio(TOY, periods_per_year=1) == pytest.approx(0.005 / math.sqrt(0.0003))
    assert sharpe_ratio(TOY, periods_per_year=252) == pytest.approx(0.005 / math.sqrt(0.0003) * math.sqrt(252))
    assert sortino_ratio(TOY, periods_per_year=1) == pytest.approx(0.005 / math.sqrt(0.00005))


def test_max_drawdown_and_calmar():
    # wealth 1 -> 2 -> 1 -> 3: a 50% fall; over 3 periods of a 3-period year wealth triples
    path = np.array([1.0, -0.5, 2.0])
    assert max_drawdown(path) == pytest.approx(0.5)
    assert calmar_ratio(path, periods_per_year=3) == pytest.approx(2.0 / 0.5)
    assert max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(0.1)  # loss against the starting capital


def test_win_rate_and_profit_factor():
    days = np.array([0.01, 0.02, 0.0, 0.03, -0.02])
    assert win_rate(days) == pytest.approx(0.75)  # flat day ignored
    assert profit_factor(days) == pytest.approx(3.0)


@pytest.mark.parametrize("metric", list(METRICS))
def test_every_metric_takes_periods_per_year_and_gives_nan_when_empty(metric):
    function = METRICS[metric]
    assert math.isnan(function(np.array([]), periods_per_year=252))
    assert math.isnan(function(np.array([np.nan, np.nan]), periods_per_year=12))


@pytest.mark.parametrize("metric", ["annual_volatility", "sharpe_ratio", "sortino_ratio"])
def test_dispersion_metrics_need_two_observations(metric):
    assert math.isnan(METRICS[metric](np.array([0.01])))


def test_zero_denominators_are_nan():
    assert math.isnan(sharpe_ratio(np.full(30, 0.001)))  # zero volatility
    assert math.isnan(sortino_ratio(np.array([0.01, 0.0, 0.02])))  # no downside
    assert math.isnan(calmar_ratio(np.array([0.01, 0.02])))  # no drawdown
    assert math.isnan(profit_factor(np.array([0.01, 0.02])))  # no losses
    assert math.isnan(win_rate(np.zeros(5)))  # no active day


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="infinite"):
        sharpe_ratio(np.array([0.01, np.inf]))
    with pytest.raises(ValueError, match="one-dimensional"):
        total_return(np.zeros((2, 2)))


def test_performance_table_and_seed_summary():
    frame = pd.DataFrame({"a": TOY, "b": -TOY})
    table = performance_table(frame, periods_per_year=1)
    assert list(table.index) == ["a", "b"] and list(table.columns) == list(METRICS)
    assert table.loc["b", "sharpe_ratio"] == pytest.approx(-0.005 / math.sqrt(0.0003))
    summary = seed_summary(frame.rename(columns={"a": "seed_0", "b": "seed_1"}), periods_per_year=1)
    assert summary.loc["sharpe_ratio", "mean"] == pytest.approx(0.0)
    assert summary.loc["sharpe_ratio", "std"] == pytest.approx(math.sqrt(2) * 0.005 / math.sqrt(0.0003))


def test_equal_weight_costs_hand_computed():
    sleeves = pd.DataFrame({"a": [0.1, -0.05], "b": [0.0, 0.05]})
    np.testing.assert_allclose(equal_weight_returns(sleeves).to_numpy(), [0.05, 0.0], atol=1e-15)
    first = (1 - 0.001) * 1.05 * (1 - 0.001 * 0.05 / 1.05) - 1  # initial purchase + drift back from (0.55, 0.5)/1.05
    second = (1 - 0.001 * 0.05) - 1  # drift back from (0.475, 0.525)
    np.testing.assert_allclose(equal_weight_returns(sleeves, rebalance_cost_bps=10).to_numpy(), [first, second])


def test_macro_writer_accepts_letters_and_rejects_bad_names(tmp_path):
    path = tmp_path / "numbers.tex"
    latex_macros({"SharpeAllocator": 1.234, "NumSeeds": 3, "TestStart": "2021-01-04", "Loss": -0.5}, path)
    text = path.read_text()
    assert r"\newcommand{\SharpeAllocator}{1.23}" in text
    assert r"\newcommand{\NumSeeds}{3}" in text
    assert r"\newcommand{\Loss}{\ensuremath{-0.50}}" in text
    for bad in ["Sharpe_Allocator", "Sharpe1", "", "Sharpe Allocator", "Sharpé"]:
        with pytest.raises(ValueError, match="letters only"):
            latex_macros({bad: 1.0}, tmp_path / "bad.tex")
    assert not (tmp_path / "bad.tex").exists()
    assert macro_name("sharpe_ratio", "stat_arb_baseline") == "SharpeRatioStatArbBaseline"
    assert macro_name("seed_2") == "SeedTwo"


def test_table_writer_produces_booktabs(tmp_path):
    frame = pd.DataFrame({"Sharpe": [1.234, np.nan]}, index=pd.Index(["stat_arb", "cash"], name="Strategy"))
    text = latex_table(frame, tmp_path / "t.tex", "Caption.", "tab:t").read_text()
    lines = text.splitlines()
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"\begin{tabular}{lr}" in text
    assert r"stat\_arb & $1.23$ \\" in text
    assert r"cash & -- \\" in text
    assert [path.name for path in tmp_path.iterdir()] == ["t.tex"]


def test_missing_stage_input_names_file_and_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"streams\.parquet.*stage 03"):
        evaluation.read_stage_inputs(tmp_path)
