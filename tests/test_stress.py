"""hrl_fund.stress: a shock reaches a trained policy only from its date on (through run_allocator and a real PPO
model), crash windows outside the data are refused by name, and the path statistics on a hand-made path."""
import pandas as pd
import pytest

from hrl_fund.allocator import regime_features, synthetic_market, synthetic_streams
from hrl_fund.master import run_allocator, train_allocator
from hrl_fund.stress import CRASH_WINDOWS, SHOCKS, replayable_windows, shock_streams, sleeve_moments, window_days

SEGMENTS = {"cio_train": ["2017-01-03", "2018-06-29"], "cio_val": ["2018-07-02", "2018-11-30"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    streams = synthetic_streams(n_days=500, seed=3)
    regime = regime_features(synthetic_market(n_days=500, seed=3))
    folder = tmp_path_factory.mktemp("cio") / "seed_0"
    algo = {"n_steps": 32, "batch_size": 64, "n_epochs": 1, "total_timesteps": 256, "net_arch": [16, 16], "n_envs": 4}
    cio = {"episode_length": 100, "window": 10, "lookback": 20, "progress_bar": False, "derisk_drawdown": None,
           "transformer": {"d_model": 16, "n_heads": 2}}
    train_allocator(streams, SEGMENTS, algo, cio, seed=0, out_dir=folder, regime=regime, policy="transformer")
    return {"streams": streams, "regime": regime, "folder": folder}


@pytest.mark.parametrize("shock", SHOCKS)
def test_a_shock_reaches_the_trained_policy_only_from_its_date_on(trained, shock):
    streams, regime = trained["streams"], trained["regime"]
    market = streams.drop(columns="cash").mean(axis=1)
    moments = sleeve_moments(streams, market, SEGMENTS["cio_train"])
    day = streams.index[460]
    shocked = shock_streams(streams, market, shock, day, moments, duration=10, sleeve="trend")
    span = (str(streams.index[440].date()), str(streams.index[-1].date()))
    base_returns, base_held = run_allocator(trained["folder"], streams, span, regime=regime)
    hit_returns, hit_held = run_allocator(trained["folder"], shocked, span, regime=regime)
    before = base_returns.index < day
    assert base_returns[before].equals(hit_returns[before])  # nothing before the shock day changes
    assert base_returns.loc[day] != hit_returns.loc[day]  # the held book earns the shocked return that day
    position = base_held.index.get_loc(day)
    assert base_held.iloc[: position + 2].equals(hit_held.iloc[: position + 2])  # the first reaction is held 2 days on
    if shock != "sleeve_halt" or base_held["trend"].iloc[position:].max() > 0:
        assert not base_held.iloc[position + 2:].equals(hit_held.iloc[position + 2:])


def test_a_crash_window_outside_the_data_is_named():
    dates = pd.bdate_range("2013-01-02", "2022-12-30")
    with pytest.raises(ValueError, match=r"stress window 'Lehman crash' \(2008-09-01..2009-03-31\) lies outside the data"):
        window_days("Lehman crash", CRASH_WINDOWS["Lehman crash"], dates)
    with pytest.raises(ValueError, match="starts after it ends"):
        window_days("backwards", ("2020-03-01", "2020-02-01"), dates)
    inside, skipped = replayable_windows(CRASH_WINDOWS, dates, lead=63)
    assert "COVID-19 crash" in inside and set(skipped) == {"Lehman crash", "US downgrade"}


def test_bad_shock_settings_are_named():
    streams = synthetic_streams(n_days=300, seed=1)
    market = streams.drop(columns="cash").mean(axis=1)
    moments = sleeve_moments(streams, market, (str(streams.index[0].date()), str(streams.index[99].date())))
    day = streams.index[200]
    with pytest.raises(ValueError, match="rho 1.5"):
        shock_streams(streams, market, "correlation_spike", day, moments, rho=1.5)
    with pytest.raises(ValueError, match="sleeve_halt needs one or more of the risky sleeves"):
        shock_streams(streams, market, "sleeve_halt", day, moments, sleeve="cash")
    with pytest.raises(ValueError, match="too few to estimate"):
        sleeve_moments(streams, market, ("1990-01-01", "1990-01-10"))
