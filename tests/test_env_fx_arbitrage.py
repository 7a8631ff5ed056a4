"""fx_arbitrage env on synthetic fixings: next-bar fills, carry closed form, accounting, determinism, no free lunch, bad inputs."""
import numpy as np
import pandas as pd
import pytest

from hrl_fund.envs.core import accounting_rollout, random_policy, seeded_trajectory
from hrl_fund.envs.fx_arbitrage import (
    FX_COSTS,
    LEGS,
    FxArbitrageEnv,
    carry_accrual_check,
    mean_and_error,
    next_bar_canary,
    policy_pnl,
    triangle_baseline,
)


def _fixings(n_bars: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    eurusd = 1.15 * np.exp(np.cumsum(rng.normal(0.0, 0.005, n_bars)))
    eurgbp = 0.80 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n_bars)))
    return eurusd, eurgbp


def _env(**kwargs) -> FxArbitrageEnv:
    eurusd, eurgbp = _fixings()
    return FxArbitrageEnv.from_fixings(eurusd, eurgbp, usd_rate_pct=2.0, costs=FX_COSTS, **kwargs)


def test_next_bar_fill():
    canary = next_bar_canary()
    assert abs(canary["enter_at_jump_minus_1"]) <= 1e-12
    assert canary["enter_at_jump_minus_2"] == pytest.approx(0.01, abs=1e-9)


@pytest.mark.parametrize("leg", LEGS)
def test_carry_is_rate_differential_times_notional(leg):
    assert carry_accrual_check(leg, constant=True) <= 1e-10


def test_accounting_and_determinism():
    env = _env(episode_length=300)
    gap, min_cost = accounting_rollout(env, seed=3, n_steps=1_000)
    assert gap <= 1e-9 and min_cost >= 0
    assert np.array_equal(seeded_trajectory(env, 5), seeded_trajectory(env, 5))
    assert not np.array_equal(seeded_trajectory(env, 5), seeded_trajectory(env, 6))


def test_no_free_lunch_without_mispricing_and_edge_with_it():
    calm = _env(mispricing_intensity=0.0)
    seeds = list(range(6))
    random_runs = policy_pnl(calm, lambda seed: random_policy(calm.action_space, seed), seeds)
    assert np.abs(random_runs["execution"]).max() <= 1e-12
    mean, error = mean_and_error(random_runs["net"])
    assert mean <= 2 * error
    assert np.array_equal(policy_pnl(calm, lambda seed: triangle_baseline(calm), seeds)["net"], np.zeros(6))
    mispriced = _env()
    edge_mean, edge_error = mean_and_error(policy_pnl(mispriced, lambda seed: triangle_baseline(mispriced), seeds)["net"])
    assert edge_mean > 2 * edge_error > 0


def test_future_never_moves_the_past():
    eurusd, eurgbp = _fixings()
    changed = eurusd.copy()
    changed[500:] *= 1.2
    envs = [FxArbitrageEnv.from_fixings(path, eurgbp, usd_rate_pct=2.0) for path in (eurusd, changed)]
    for env in envs:
        env.reset(seed=4)
    assert np.array_equal(envs[0]._episode_obs[: 500 - envs[0]._first], envs[1]._episode_obs[: 500 - envs[1]._first])


@pytest.mark.parametrize("kwargs, message", [
    ({"costs": {"slippage_bps": -1.0}}, "'slippage_bps'"),
    ({"spread_bps": -0.5}, "'spread_bps'"),
    ({"window": 5_000}, "'window' = 5000"),
    ({"tickers": ("EURUSD", "EURNOPE")}, "EURNOPE"),
    ({"mispricing_intensity": 2.0}, "'mispricing_intensity'"),
])
def test_bad_inputs_name_the_option(kwargs, message):
    eurusd, eurgbp = _fixings()
    prices = pd.DataFrame({"EURUSD": eurusd, "EURGBP": eurgbp}, index=pd.bdate_range("2000-01-03", periods=len(eurusd)))
    rates = pd.Series(2.0, index=prices.index)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        FxArbitrageEnv(prices=prices, rates=rates, **kwargs)


def test_non_positive_price_names_ticker_date_and_value():
    eurusd, eurgbp = _fixings()
    eurusd[300] = 0.0
    with pytest.raises(ValueError, match=r"price 0.0 for EURUSD on 2001-02-"):
        FxArbitrageEnv.from_fixings(eurusd, eurgbp, usd_rate_pct=2.0)
