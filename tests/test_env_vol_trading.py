"""vol_trading env: next-bar fills, accounting, leakage, bad inputs and the no-premium known answer on synthetic markets."""
import numpy as np
import pandas as pd
import pytest

from hrl_fund.envs.core import accounting_rollout, seeded_trajectory
from hrl_fund.envs.vol_trading import (
    VolTradingEnv,
    _bad_input_cases,
    always_short_baseline,
    gbm_calendar_path,
    iv_rv_threshold_baseline,
    next_bar_canary,
    zero_premium_check,
)

COSTS = {"commission_bps": 1.0, "half_spread_bps": 2.0, "slippage_bps": 2.0, "borrow_bps_annual": 50.0}


def _market(n_bars: int = 1_500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    _, spot = gbm_calendar_path(n_bars, 0.2, 0.05, rng, start="2000-01-03")
    vix = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.05, n_bars)) * 0.3)
    return spot, vix


def _env(**kwargs) -> VolTradingEnv:
    spot, vix = _market()
    return VolTradingEnv.from_series(spot, vix, rate=2.0, costs=COSTS, **kwargs)


def test_next_bar_fill():
    canary = next_bar_canary()
    assert canary["enter_at_jump_minus_1"] == 0.0
    assert canary["enter_at_jump_minus_2"] == pytest.approx(canary["enter_at_jump_minus_2_reference"], rel=1e-9)


def test_accounting_and_determinism():
    env = _env(episode_length=400)
    gap, min_cost = accounting_rollout(env, seed=3, n_steps=1_000)
    assert gap <= 1e-9 and min_cost >= 0
    assert np.array_equal(seeded_trajectory(env, 4), seeded_trajectory(env, 4))


def test_baselines_and_finite_observations():
    env = _env()
    for policy in (always_short_baseline(env), iv_rv_threshold_baseline(env)):
        obs, _ = env.reset(seed=0)
        finished = False
        while not finished:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            assert np.isfinite(obs).all() and np.isfinite(reward) and info["cost"] >= 0
            finished = terminated or truncated


def test_future_data_is_never_read():
    spot, vix = _market()
    dates = pd.bdate_range("2000-01-03", periods=len(spot))
    prices = pd.DataFrame({"SP500": spot, "VIX": vix}, index=dates)
    rates = pd.Series(2.0, index=dates)
    segment = (str(dates[400].date()), str(dates[900].date()))
    base = VolTradingEnv(prices=prices, rates=rates, segment=segment)
    changed = prices.copy()
    changed.iloc[700:] *= 1.5
    shifted = VolTradingEnv(prices=changed, rates=rates, segment=segment)
    np.testing.assert_array_equal(base._obs_table[:700], shifted._obs_table[:700])
    np.testing.assert_array_equal(base.book["value"][:700], shifted.book["value"][:700])
    poisoned = prices.copy()
    poisoned.iloc[901:] = np.nan
    np.testing.assert_array_equal(VolTradingEnv(prices=poisoned, rates=rates, segment=segment)._obs_table, base._obs_table)


@pytest.mark.parametrize("case", _bad_input_cases(), ids=lambda case: case[0])
def test_bad_inputs_name_themselves(case):
    _, make, text = case
    with pytest.raises(ValueError) as error:
        make()
    assert text in str(error.value)


def test_nan_action_is_refused():
    env = _env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([np.nan], dtype=np.float32))


def test_no_premium_no_edge():
    result = zero_premium_check(n_years=15)
    assert abs(result["no_premium_t_stat"]) < 3 and result["premium_t_stat"] > 3
