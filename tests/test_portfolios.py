"""The multi-asset allocator's classical benchmarks (hrl_fund.portfolios): valid target rows, trade days, the
minimum-volatility and momentum rules on known data, no look-ahead, and every bad input."""
import numpy as np
import pandas as pd
import pytest

from hrl_fund.portfolios import BENCHMARKS, benchmark_targets, capped_fit_weights, monthly_rebalance_days

RISKY = ["LOW", "MID", "HIGH", "HIGHER", "WILD", "LATE"]
LISTING, HISTORY = 400, 500  # LATE's first priced row; the segment starts on this row


def universe(seed: int = 0, n_days: int = 750) -> tuple[pd.DataFrame, pd.DataFrame]:
    "Returns (n_days, 7) of six instruments of rising volatility (LATE listed on row LISTING) and CASH, and the tradable mask"
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2020-01-01", periods=n_days, name="date")
    volatility = np.array([0.005, 0.01, 0.015, 0.02, 0.03, 0.012])  # (6,) daily
    returns = pd.DataFrame(rng.normal(0.0003, 1.0, (n_days, 6)) * volatility, index=index, columns=RISKY)
    returns["CASH"] = 0.0001
    tradable = returns.notna()
    tradable.iloc[:LISTING, returns.columns.get_loc("LATE")] = False
    return returns.where(tradable), tradable


@pytest.fixture(scope="module")
def data():
    returns, tradable = universe()
    segment = returns.index[HISTORY:]
    targets = {name: benchmark_targets(name, returns, tradable, segment) for name in BENCHMARKS}
    return returns, tradable, segment, targets


@pytest.mark.parametrize("name", BENCHMARKS)
def test_target_rows_are_valid_books(data, name):
    _, tradable, segment, results = data
    targets, report = results[name]
    traded = targets.dropna()
    assert targets.index.equals(segment) and list(targets.columns) == RISKY + ["CASH"]
    assert targets.notna().all(axis=1).equals(targets.notna().any(axis=1))  # a row is all weights or all NaN
    assert len(traded) == report["rebalances"] > 0
    assert (traded.to_numpy() >= 0).all()
    assert traded.sum(axis=1).to_numpy() == pytest.approx(np.ones(len(traded)), abs=1e-9)
    assert (traded[RISKY].to_numpy() <= 0.5 + 1e-12).all()
    assert (traded.to_numpy()[~tradable.loc[traded.index].to_numpy()] == 0).all()


def test_cap_sends_the_excess_to_cash(data):
    returns, tradable, segment, _ = data
    for name in BENCHMARKS:
        targets, report = benchmark_targets(name, returns, tradable, segment[:60], max_weight=0.1)
        traded = targets.dropna()
        assert (traded[RISKY].to_numpy() <= 0.1 + 1e-12).all()
        assert traded["CASH"].to_numpy() == pytest.approx(1 - traded[RISKY].sum(axis=1).to_numpy(), abs=1e-12)
        assert report["max_cash_weight"] >= 0.4 - 1e-9  # at most six instruments at 0.1


def test_buy_and_hold_trades_once_over_the_first_days_instruments():
    returns, tradable = universe()
    segment = returns.index[LISTING - 20:]  # LATE lists 20 days in: never bought
    targets, report = benchmark_targets("equal_weight_buy_hold", returns, tradable, segment)
    assert report["rebalances"] == 1
    assert targets.iloc[0].to_dict() == pytest.approx({**dict.fromkeys(RISKY[:5], 0.2), "LATE": 0.0, "CASH": 0.0})
    assert targets.iloc[1:].isna().all().all()


def test_monthly_days_are_the_first_date_and_each_months_first():
    days = pd.bdate_range("2021-01-15", "2021-04-30")
    assert list(days[monthly_rebalance_days(days)].strftime("%m-%d")) == ["01-15", "02-01", "03-01", "04-01"]
    assert monthly_rebalance_days(pd.DatetimeIndex([])).shape == (0,)
    with pytest.raises(ValueError, match="strictly increasing"):
        monthly_rebalance_days(days[::-1])


@pytest.mark.parametrize("name", [name for name in BENCHMARKS if name != "equal_weight_buy_hold"])
def test_monthly_benchmarks_trade_on_the_monthly_days(data, name):
    _, _, segment, results = data
    targets, _ = results[name]
    np.testing.assert_array_equal(targets.notna().all(axis=1).to_numpy(), monthly_rebalance_days(segment))


def test_late_listing_enters_equal_weight_at_once_and_fits_after_a_full_window(data):
    _, _, segment, results = data
    monthly = monthly_rebalance_days(segment)
    before_full_window = monthly & (np.arange(len(segment)) + HISTORY < LISTING + 252 - 1)
    for name in ["minimum_volatility", "risk_parity", "momentum_12_1"]:
        targets, report = results[name]
        assert report["excluded"]["short_history"] == {"LATE": int(before_full_window.sum())}
        assert (targets["LATE"].to_numpy()[before_full_window] == 0).all()
    assert results["equal_weight_monthly"][0].dropna()["LATE"].eq(1 / 6).all()


def test_minimum_volatility_beats_equal_weight_in_sample(data):
    returns, tradable, segment, results = data
    targets, report = results["minimum_volatility"]
    assert report["fits"] == report["rebalances"]
    for date in targets.dropna().index:
        row = returns.index.get_loc(date)
        window = returns.iloc[row - 251: row + 1][RISKY]  # the fit's 252 days, up to and including the date
        live = tradable.iloc[row - 251: row + 1][RISKY].all().to_numpy()
        covariance = np.cov(window.loc[:, live].to_numpy().T)
        weights = targets.loc[date, RISKY].to_numpy()[live]
        equal = np.full(live.sum(), 1 / live.sum())
        assert weights.sum() == pytest.approx(1.0, abs=1e-9)
        assert weights @ covariance @ weights < equal @ covariance @ equal


def test_capped_fit_weights_caps_and_leaves_out_flat_instruments():
    returns, _ = universe()
    window = returns.iloc[248:500, :5]
    weights, flat = capped_fit_weights("minimum_volatility", window.assign(MID=0.0), max_weight=0.5)
    assert flat == ["MID"] and weights[1] == 0 and weights.sum() == pytest.approx(1.0, abs=1e-9)
    assert (weights <= 0.5 + 1e-12).all()
    parity, _ = capped_fit_weights("risk_parity", window, max_weight=0.3)
    assert parity[0] == pytest.approx(0.3) and parity.sum() < 1  # the quietest is capped, the excess left for cash
    assert list(capped_fit_weights("minimum_volatility", window.iloc[:, :2], max_weight=0.4)[0]) == [0.4, 0.4]


def momentum_universe() -> pd.DataFrame:
    "300 days of six instruments: UP rises, B rises less, DOWN falls, UP crashes in the last (skipped) ten days"
    index = pd.bdate_range("2022-01-03", periods=300, name="date")
    returns = pd.DataFrame(np.random.default_rng(1).normal(0.0, 0.001, (300, 6)), index=index,
                           columns=["UP", "DOWN", "A", "B", "C", "D"])
    returns["UP"] += 0.002
    returns["DOWN"] -= 0.002
    returns["B"] += 0.001
    returns.iloc[-10:, returns.columns.get_loc("UP")] = -0.05
    returns["CASH"] = 0.0
    return returns


def test_momentum_holds_the_known_winners():
    returns = momentum_universe()
    targets, report = benchmark_targets("momentum_12_1", returns, returns.notna(), returns.index[-1:])
    assert targets.iloc[0][targets.iloc[0] > 0].to_dict() == {"UP": 0.5, "B": 0.5}
    assert report["momentum_lookback"] == 252 and report["momentum_skip"] == 21
    # without the skip, UP's crash counts and B leads; a fraction of 1/6 holds one name, half of it in cash
    targets, _ = benchmark_targets("momentum_12_1", returns, returns.notna(), returns.index[-1:], momentum_skip=0,
                                   momentum_fraction=1 / 6)
    assert targets.iloc[0][targets.iloc[0] > 0].to_dict() == {"B": 0.5, "CASH": 0.5}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_no_look_ahead(data, name):
    returns, tradable, segment, results = data
    original, _ = results[name]
    t0 = segment[130]  # mid-month: the next rebalance would see the change
    later = returns.index > t0
    perturbed = returns.copy()
    perturbed.loc[later] = perturbed.loc[later] * -3.0 + 0.01 * tradable.loc[later]  # NaN stays NaN
    changed, _ = benchmark_targets(name, perturbed, tradable, segment)
    np.testing.assert_array_equal(changed.loc[:t0].to_numpy(), original.loc[:t0].to_numpy())
    if name in ("minimum_volatility", "momentum_12_1", "risk_parity"):
        assert not np.allclose(changed.loc[t0:].dropna(), original.loc[t0:].dropna())  # the canary is alive


def test_no_tradable_instrument_holds_cash(data):
    returns, tradable, segment, _ = data
    unlisted = tradable.copy()
    unlisted[RISKY] = False
    for name in BENCHMARKS:
        targets, report = benchmark_targets(name, returns, unlisted, segment[:30])
        assert targets.dropna()["CASH"].eq(1.0).all()
        assert report["excluded"]["not_tradable"]["LOW"] == report["rebalances"]


def holed(returns: pd.DataFrame, date) -> pd.DataFrame:
    "`returns` with MID's return on `date` missing while it stays tradable"
    holed = returns.copy()
    holed.loc[date, "MID"] = np.nan
    return holed


@pytest.mark.parametrize(("change", "message"), [
    (lambda r, t, d: dict(name="sixty_forty"), "unknown benchmark 'sixty_forty' .known: equal_weight_buy_hold"),
    (lambda r, t, d: dict(dates=d[::2]), "contiguous run of returns.index"),
    (lambda r, t, d: dict(dates=d.shift(1, freq="D")), "is not in returns.index"),
    (lambda r, t, d: dict(dates=d[:0]), "non-empty"),
    (lambda r, t, d: dict(cash="cash"), "cash column 'cash' is not among"),
    (lambda r, t, d: dict(max_weight=0.0), r"max_weight must be in \(0, 1\], got 0.0"),
    (lambda r, t, d: dict(max_weight=1.5), "got 1.5"),
    (lambda r, t, d: dict(window=1), "window must be an integer >= 2 days, got 1"),
    (lambda r, t, d: dict(tradable=t.iloc[1:]), "tradable must have the same index and columns"),
    (lambda r, t, d: dict(tradable=t[t.columns[::-1]]), "tradable must have the same index and columns"),
    (lambda r, t, d: dict(tradable=t.astype(int)), "tradable must be bool"),
    (lambda r, t, d: dict(returns=holed(r, d[3])), f"MID has a NaN return on {pd.bdate_range('2020-01-01', periods=HISTORY + 4)[-1].date()} where"),
    (lambda r, t, d: dict(momentum_skip=252), "momentum_skip < momentum_lookback"),
    (lambda r, t, d: dict(momentum_fraction=0.0), "momentum_fraction must be in"),
])
def test_bad_input_is_named(data, change, message):
    returns, tradable, segment, _ = data
    arguments = dict(name="risk_parity", returns=returns, tradable=tradable, dates=segment)
    arguments.update(change(returns, tradable, segment))
    name = arguments.pop("name")
    with pytest.raises(ValueError, match=message):
        benchmark_targets(name, arguments.pop("returns"), arguments.pop("tradable"), arguments.pop("dates"), **arguments)
