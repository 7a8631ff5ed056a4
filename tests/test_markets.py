"""Contracts of hrl_fund.markets: seeded determinism, documented shapes, bad inputs naming the argument, and the no-arbitrage and pricing identities the environments rely on."""

import math

import numpy as np
import pandas as pd
import pytest

from hrl_fund import markets
from hrl_fund.markets import (
    SchwartzSmith,
    as_quotes,
    as_simulate,
    bond_total_return,
    bs_greeks,
    bs_price,
    cash_return,
    contract_expiries,
    futures_curve,
    futures_price,
    fx_quotes,
    gbm_paths,
    heston_paths,
    roll_schedule,
    rolled_pnl,
    schwartz_smith_paths,
    skewed_vol,
    synthetic_crypto,
    triangle_edges,
)

PARAMS = SchwartzSmith(kappa=1.2, sigma_chi=0.3, sigma_xi=0.15, rho=0.3, mu_xi=0.0, lambda_chi=0.15, mu_xi_star=0.01)


def _fixings(n_days: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days, name="date")
    eurusd = 1.1 * np.exp(np.cumsum(0.005 * rng.standard_normal(n_days)))
    eurgbp = 0.85 * np.exp(np.cumsum(0.004 * rng.standard_normal(n_days)))
    return pd.DataFrame({"EURUSD": eurusd, "EURGBP": eurgbp}, index=dates)


def _factor_returns(n_days: int = 400, seed: int = 1) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-01-01", periods=n_days, freq="D")
    btc = pd.Series(0.04 * rng.standard_normal(n_days), index=dates)
    eth = pd.Series(0.05 * rng.standard_normal(n_days), index=dates)
    return btc, eth


# one call per generator with a fixed seed; each must return identical output twice
GENERATORS = {
    "gbm": lambda rng: gbm_paths(100.0, 0.05, 0.2, 1.0, 20, 30, rng),
    "heston": lambda rng: heston_paths(100.0, 0.04, 0.0, 2.0, 0.04, 0.3, -0.7, 1.0, 20, 30, rng)[0],
    "schwartz_smith": lambda rng: schwartz_smith_paths(0.1, 4.0, PARAMS, 1 / 252, 20, 30, rng)[0],
    "fx": lambda rng: fx_quotes(_fixings(), 1.0, 0.2, 2.0, 5.0, rng).to_numpy(),
    "market_making": lambda rng: as_simulate("inventory", 30, rng)["profit"],
    "crypto": lambda rng: synthetic_crypto(*_factor_returns(), ["A", "B"], rng)[0].to_numpy(),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_seed_same_output_and_new_seed_new_output(name):
    generate = GENERATORS[name]
    first, again = generate(np.random.default_rng(11)), generate(np.random.default_rng(11))
    other = generate(np.random.default_rng(12))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_path_shapes_include_the_start():
    rng = np.random.default_rng(0)
    assert gbm_paths(100.0, 0.0, 0.2, 1.0, 10, 7, rng).shape == (7, 11)
    prices, variances = heston_paths(100.0, 0.04, 0.0, 2.0, 0.04, 0.3, -0.7, 1.0, 10, 7, rng)
    assert prices.shape == variances.shape == (7, 11)
    assert (prices[:, 0] == 100.0).all() and (variances >= 0).all()
    chi, xi = schwartz_smith_paths(0.1, 4.0, PARAMS, 0.01, 10, 7, rng, measure="Q")
    assert chi.shape == xi.shape == (7, 11)


BAD_INPUTS = [
    (lambda: gbm_paths(100.0, 0.0, -0.2, 1.0, 10, 10, np.random.default_rng(0)), "sigma=-0.2"),
    (lambda: gbm_paths(100.0, 0.0, 0.2, -1.0, 10, 10, np.random.default_rng(0)), "maturity must be > 0.0"),
    (lambda: heston_paths(100.0, np.nan, 0.0, 2.0, 0.04, 0.3, -0.7, 1.0, 10, 10, np.random.default_rng(0)), "v0"),
    (lambda: bs_price(100.0, -5.0, 0.5, 0.0, 0.2), "strike must be > 0.0, got strike=-5.0"),
    (lambda: bs_greeks(100.0, 100.0, 0.0, 0.0, 0.2), "tau must be > 0.0"),
    (lambda: bs_price(100.0, 100.0, 0.5, 0.0, -0.3, "put"), "vol must be > 0.0, got vol=-0.3"),
    (lambda: skewed_vol(0.2, np.nan, 0.1), "log_moneyness must not be NaN"),
    (lambda: fx_quotes(_fixings(), mispricing_intensity=-0.5), "mispricing_intensity must be >= 0.0"),
    (lambda: as_simulate("inventory", 10, np.random.default_rng(0), sigma=-1.0), "sigma must be >= 0.0"),
    (lambda: synthetic_crypto(*_factor_returns(), ["A"], np.random.default_rng(0), idio_vol=-0.1), "idio_vol"),
    (lambda: futures_price(0.0, 4.0, -0.5, PARAMS), "tau must be >= 0.0"),
    (lambda: bond_total_return(np.array([2.0, np.nan, 2.1]), 10.0), "yield_pct must not be NaN"),
]


@pytest.mark.parametrize("call, message", BAD_INPUTS, ids=[message for _, message in BAD_INPUTS])
def test_bad_inputs_raise_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_put_call_parity_and_greek_signs():
    strikes = np.linspace(60.0, 140.0, 17)
    calls = bs_price(100.0, strikes, 0.7, 0.02, 0.3, "call", dividend=0.01)
    puts = bs_price(100.0, strikes, 0.7, 0.02, 0.3, "put", dividend=0.01)
    parity = 100.0 * math.exp(-0.01 * 0.7) - strikes * math.exp(-0.02 * 0.7)
    assert np.abs(calls - puts - parity).max() < 1e-10
    call_greeks, put_greeks = (bs_greeks(100.0, strikes, 0.7, 0.02, 0.3, kind) for kind in ("call", "put"))
    assert (call_greeks["delta"] > 0).all() and (put_greeks["delta"] < 0).all()
    np.testing.assert_allclose(call_greeks["gamma"], put_greeks["gamma"])
    np.testing.assert_allclose(call_greeks["vega"], put_greeks["vega"])


def test_zero_intensity_quotes_admit_no_triangle_arbitrage():
    quotes = fx_quotes(_fixings(), spread_bps=[0.5, 1.0, 2.0])
    assert (quotes["mispricing"] == 0).all()
    assert (triangle_edges(quotes).to_numpy() < 0).all()


def test_futures_converge_to_spot_and_rolls_book_only_their_cost():
    dates = pd.bdate_range("2019-01-02", "2019-06-28")
    expiries = contract_expiries("2019-02-01", "2019-12-31")
    chi, xi = schwartz_smith_paths(0.1, math.log(50.0), PARAMS, 1 / 252, len(dates) - 1, 1, np.random.default_rng(2))
    curve = futures_curve(chi[0], xi[0], dates, expiries, PARAMS)
    expiry = expiries[1]
    assert curve.loc[expiry, expiry] == pytest.approx(math.exp(chi[0, dates.get_loc(expiry)] + xi[0, dates.get_loc(expiry)]),
                                                      rel=1e-12)
    assert curve.loc[dates > expiry, expiry].isna().all()
    static = np.tile(np.arange(1.0, len(expiries) + 1) * 10.0, (len(dates), 1))
    pnl, cost = rolled_pnl(static, roll_schedule(dates, expiries, roll_days=3), position=-2.0, roll_cost_bps=1.0)
    np.testing.assert_array_equal(pnl, -cost)
    assert (cost > 0).sum() == 6  # contracts expiring Jan 22 .. Jun 20, 2019


def test_avellaneda_stoikov_closed_form():
    quotes = as_quotes(np.array([100.0, 100.0]), np.array([0.0, 3.0]), 0.5, gamma=0.1, sigma=2.0, k=1.5)
    spread = 0.1 * 4.0 * 0.5 + 20.0 * math.log(1.0 + 0.1 / 1.5)
    np.testing.assert_allclose(quotes["spread"], [spread, spread])
    np.testing.assert_allclose(quotes["reservation"], [100.0, 100.0 - 3.0 * 0.1 * 4.0 * 0.5])
    np.testing.assert_allclose(quotes["ask"] - quotes["bid"], [spread, spread])


def test_synthetic_crypto_is_labelled_synthetic():
    prices, meta = synthetic_crypto(*_factor_returns(), ["X1", "X2", "X3"], np.random.default_rng(3),
                                    loadings=np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]))
    assert list(prices.columns) == ["X1", "X2", "X3"] and meta["synthetic"].all()
    assert (meta["source"] == "synthetic").all() and (prices.iloc[0] == 100.0).all()


def test_synthetic_crypto_has_no_idiosyncratic_drift():
    "Mean annual log growth = loadings x factor log growth - drift_adjustment (4 SE); the price factor exp(noise + jumps) has mean one"
    btc, eth = _factor_returns(n_days=730)
    n_names = 4000
    loadings = np.tile([0.7, 0.5], (n_names, 1))  # (n_names, 2)
    prices, meta = synthetic_crypto(btc, eth, [f"N{number}" for number in range(n_names)], np.random.default_rng(4),
                                    loadings=loadings)
    years = len(btc) / 365
    growth = np.log(prices.iloc[-1] / prices.iloc[0]).to_numpy() / years  # (n_names,)
    adjustment = meta["drift_adjustment"].iloc[0]
    assert adjustment == pytest.approx(0.5 * 0.6**2 + 6.0 * (math.exp(-0.02 + 0.5 * 0.15**2) - 1 + 0.02), rel=1e-3)
    expected = 0.7 * btc.sum() / years + 0.5 * eth.sum() / years - adjustment
    standard_error = growth.std(ddof=1) / math.sqrt(n_names)
    assert abs(growth.mean() - expected) < 4 * standard_error, (growth.mean(), expected, standard_error)
    assert adjustment > 10 * standard_error  # without the correction the check above would fail
    one_step = prices.iloc[1] / prices.iloc[0] / np.exp(0.7 * btc.iloc[0] + 0.5 * eth.iloc[0])  # (n_names,) idiosyncratic factor
    assert abs(one_step.mean() - 1.0) < 4 * one_step.std(ddof=1) / math.sqrt(n_names)


def test_cash_accrues_act_360():
    dates = pd.DatetimeIndex(["2024-01-05", "2024-01-08", "2024-01-09"])  # Friday, Monday, Tuesday
    accrual = cash_return(pd.Series([3.6, 3.6, 3.6], index=dates))
    assert math.isnan(accrual.iloc[0])
    assert accrual.iloc[1] == pytest.approx(0.036 * 3 / 360)
    assert accrual.iloc[2] == pytest.approx(0.036 / 360)


def test_module_lists_its_public_api():
    for name in ("gbm_paths", "heston_paths", "calibrate_gbm", "bs_price", "bs_greeks", "skewed_vol",
                 "implied_vol_surface", "fit_schwartz_smith", "futures_curve", "fx_quotes", "as_quotes",
                 "as_simulate", "synthetic_crypto", "bond_total_return", "cash_return", "treasury_sleeves"):
        assert name in markets.__all__
