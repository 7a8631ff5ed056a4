"""hrl_fund.statistics: the paper's worked DSR example, PSR at the minimum track record, reproducible paired bootstrap
resamples, the block-length rule on dependent data and the refusals of bad input."""
import math

import numpy as np
import pandas as pd
import pytest

from hrl_fund.statistics import (
    _psr,
    block_length,
    bootstrap_intervals,
    bootstrap_statistics,
    break_even_cost,
    cost_sensitivity,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    minimum_track_record,
    probabilistic_sharpe_ratio,
    sharpe_difference,
    stationary_bootstrap_indices,
)


@pytest.fixture(scope="module")
def returns():
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2019-01-01", periods=800)
    common = rng.standard_normal(800)
    return pd.DataFrame({"agent": 0.01 * (0.05 + 0.7 * common + 0.7 * rng.standard_normal(800)),
                         "baseline": 0.01 * (0.02 + 0.7 * common + 0.7 * rng.standard_normal(800))}, index=days)


def test_the_deflated_sharpe_ratio_reproduces_the_papers_worked_example():
    threshold = expected_max_sharpe(100, 0.5 / 250)  # 100 trials, annual Sharpe variance 0.5, 250 days a year
    assert threshold == pytest.approx(0.1132, abs=1e-4)
    assert _psr(2.5 / math.sqrt(250), -3.0, 10.0, 1250, threshold) == pytest.approx(0.9004, abs=1e-3)
    assert expected_max_sharpe(1, 0.5) == 0.0  # no selection, no deflation


def test_more_trials_deflate_more_and_the_track_record_gives_the_level(returns):
    series = returns["agent"]
    values = [deflated_sharpe_ratio(series, n, 0.3) for n in (1, 10, 100, 1000)]
    assert values[0] == pytest.approx(probabilistic_sharpe_ratio(series))
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    needed = minimum_track_record(series, benchmark=0.5, level=0.9)
    assert needed > 0 and math.isfinite(needed)
    assert minimum_track_record(series, benchmark=50.0) == math.inf


def test_bootstrap_is_reproducible_paired_and_stationary(returns):
    first = bootstrap_statistics(returns, n_resamples=300, seed=7)
    again = bootstrap_statistics(returns, n_resamples=300, seed=7)
    for name, table in first.items():
        pd.testing.assert_frame_equal(table, again[name])
    alone = bootstrap_statistics(returns["agent"], n_resamples=300, seed=7, block=first["sharpe_ratio"].attrs["block"])
    np.testing.assert_array_equal(alone["sharpe_ratio"]["agent"], first["sharpe_ratio"]["agent"])  # same days drawn
    positions = stationary_bootstrap_indices(50, 5.0, 2000, np.random.default_rng(1))
    np.testing.assert_allclose(np.bincount(positions.ravel(), minlength=50) / positions.size, 1 / 50, rtol=0.12)
    table = bootstrap_intervals(returns, n_resamples=500)
    assert ((table["low"] <= table["estimate"]) & (table["estimate"] <= table["high"])).all()


def test_the_block_rule_grows_with_dependence():
    rng = np.random.default_rng(2)
    shocks = rng.standard_normal(3000)
    dependent = np.zeros(3000)
    for day in range(1, 3000):
        dependent[day] = 0.7 * dependent[day - 1] + shocks[day]
    assert block_length(shocks) <= 4 < 15 <= block_length(dependent)


def test_paired_comparison_and_costs(returns):
    result = sharpe_difference(returns["agent"], returns["baseline"], n_resamples=500)
    assert result["low"] <= result["difference"] <= result["high"]
    assert 0 <= result["p_bootstrap"] <= 1 and 0 <= result["p_jkm"] <= 1
    traded = pd.Series(0.1, index=returns.index)
    edge = break_even_cost(returns["agent"], traded)
    assert cost_sensitivity(returns["agent"], traded, [edge]).iloc[0] == pytest.approx(0.0, abs=1e-9)


def test_bad_input_is_named(returns):
    with pytest.raises(ValueError, match="too short"):
        bootstrap_statistics(returns.iloc[:12], block=10)
    with pytest.raises(ValueError, match="number of trials"):
        deflated_sharpe_ratio(returns["agent"], 0, 0.3)
    with pytest.raises(ValueError, match="missing values in \\['agent'\\]"):
        bootstrap_statistics(returns.assign(agent=returns["agent"].where(returns.index.day_of_week != 0)))
    with pytest.raises(ValueError, match="same days"):
        sharpe_difference(returns["agent"], returns["baseline"].iloc[:-3])
