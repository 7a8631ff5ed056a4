"""delta_hedging: bad inputs name the option or the date, rewards stay finite, step = the vectorised ledger, no leakage."""
import math
import re

import numpy as np
import pytest

from hrl_fund.envs.delta_hedging import (
    DeltaHedgingEnv,
    action_to_hedge,
    derman_kamal_check,
    load_index_and_vix,
    short_call_pnl,
)

VAL = ("2011-01-03", "2012-12-31")
EQUITY_COSTS = {"commission_bps": 1.0, "half_spread_bps": 2.0, "slippage_bps": 2.0, "borrow_bps_annual": 50.0}
BAD_HESTON = {"v0": 0.03, "kappa": 2.0, "theta": 0.04, "xi": -0.3, "rho": -0.7}


@pytest.fixture(scope="module")
def panel():
    return load_index_and_vix().copy()


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "gbm", "sigma": -0.2}, "option 'sigma'"),
    ({"mode": "gbm", "sigma": 0.2, "maturity": 0.0}, "option 'maturity'"),
    ({"mode": "gbm", "sigma": 0.2, "maturity": -0.5}, "-0.5"),
    ({"tenor_days": 0}, "option 'tenor_days'"),
    ({"moneyness": 0.0}, "strike"),
    ({"mode": "gbm", "sigma": 0.2, "moneyness": -1.0}, "option 'moneyness'"),
    ({"mode": "heston", "heston": BAD_HESTON}, "xi"),
    ({"costs": {"slippage_bps": -1.0}}, "slippage_bps"),
    ({"fill_lag": 3}, "option 'fill_lag'"),
])
def test_bad_options_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DeltaHedgingEnv(**kwargs)


def test_vix_gaps_and_negative_vol_name_the_date(panel):
    holed = panel.copy()
    holed.loc["2012-03-15", "VIX"] = np.nan
    with pytest.raises(ValueError, match="VIX has a gap .* on 2012-03-15"):
        DeltaHedgingEnv(prices=holed, segment=VAL)
    negative = panel.copy()
    negative.loc["2012-03-15", "VIX"] = -20.0
    with pytest.raises(ValueError, match=re.escape("got -20.0 on 2012-03-15")):
        DeltaHedgingEnv(prices=negative, segment=VAL)
    DeltaHedgingEnv(prices=holed, segment=("2011-01-03", "2012-03-14"))  # a gap after the segment is never read


@pytest.mark.parametrize("fill_lag", [0, 1])
def test_random_rollout_is_finite_and_balanced(fill_lag):
    env = DeltaHedgingEnv(segment=VAL, costs=EQUITY_COSTS, fill_lag=fill_lag)
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)
    pnl_sum, finished = 0.0, False
    while not finished:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert math.isfinite(reward) and np.isfinite(obs).all() and info["cost"] >= 0
        env.check_accounting()
        pnl_sum += info["pnl"]
        finished = terminated or truncated
    assert truncated and info["date"] == env.dates[-1]
    assert abs(pnl_sum - (info["equity"] - env.initial_equity)) <= 1e-9 * env.initial_equity


def test_step_matches_vectorised_ledger():
    env = DeltaHedgingEnv.synthetic("gbm", sigma=0.25, mu=0.05, costs={"half_spread_bps": 10.0}, rate=0.02,
                                    fill_lag=0)  # the textbook hedge the vectorised ledger models
    env.reset(seed=1)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(env.n_rebalances, 1)).astype(np.float32)
    stepped = np.array([env.step(action)[4]["pnl"] for action in actions])
    path = {name: (value[:1] if value.ndim >= 2 else value) for name, value in env._batch.items()}
    hedge = action_to_hedge(actions[:, 0].astype(np.float64))[None, :]
    vectorised = short_call_pnl(path, hedge, env.initial_equity / env.s0, 1e-3)["pnl"][0]
    np.testing.assert_allclose(stepped, vectorised, rtol=1e-9, atol=1e-6)


def test_future_prices_do_not_move_past_observations(panel):
    changed = panel.copy()
    changed.loc["2012-06-01":, ["SP500", "VIX"]] *= 1.7
    original = DeltaHedgingEnv(prices=panel, segment=VAL)._daily_episode(*_bounds(panel))
    perturbed = DeltaHedgingEnv(prices=changed, segment=VAL)._daily_episode(*_bounds(changed))
    before = original["dates"] < np.datetime64("2012-06-01")
    np.testing.assert_array_equal(original["features"][before], perturbed["features"][before])


def _bounds(prices):
    env = DeltaHedgingEnv(prices=prices, segment=VAL)
    return env._first, env._last


def test_derman_kamal_small():
    result = derman_kamal_check(sigma=0.2, maturity=0.25, rebalances=(63, 252), n_paths=4_000)
    for row in result["rows"]:
        assert abs(row["std"] / row["reference"] - 1) < 0.10, row
