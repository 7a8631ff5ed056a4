"The data layer across notebooks: the build benchmark within its budget, universes, and bad input."
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, REPO, run
from hrl_fund.data import DataSourceError, load_prices, universe, validate


def test_build_benchmark_within_budget(tmp_path):
    "Every processed dataset and feature set from the raw snapshot: at most 60 s and 4 GiB"
    out = tmp_path / "data.json"
    run([str(BIN / "python"), "-m", "hrl_fund.data", "bench", "--params", str(REPO / "params.yaml"), "--out", str(out)],
        REPO)
    result = json.loads(out.read_text())
    assert result["wall_s"] <= 60 and result["peak_rss_mb"] <= 4096, result
    assert result["fund_features"][1] >= 50 * result["fund_panel"][1]


def test_multi_asset_universe_covers_every_sleeve():
    prices, meta = universe("multi_asset")
    real = meta.index[~meta["synthetic"]]
    assert len(real) >= 20 and {"BTC", "ETH"} <= set(real)
    assert {"crypto", "equity", "bond", "cash", "volatility_hedge"} <= set(meta["asset_class"])
    assert meta.loc[meta["source"].str.startswith("synthetic"), "synthetic"].all()
    assert list(prices.columns) == list(meta.index)


@pytest.mark.parametrize("prices, message", [
    (pd.DataFrame({"A": [np.nan, np.nan]}, index=pd.to_datetime(["2020-01-02", "2020-01-03"])), "A: no prices at all"),
    (pd.DataFrame({"A": [1.0, 0.0]}, index=pd.to_datetime(["2020-01-02", "2020-01-03"])), "A: non-positive price 0.0 on 2020-01-03"),
])
def test_bad_prices_are_named(prices, message):
    with pytest.raises(ValueError, match=message):
        validate(prices)


def test_yfinance_without_network_keeps_the_cache(tmp_path):
    cached = tmp_path / "keep.parquet"
    cached.write_bytes(b"previous")
    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")
    with pytest.raises(DataSourceError, match="no network"):
        load_prices("yfinance", ["SPY"], "2020-01-01", "2020-02-01", path=tmp_path, download=no_network)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.parquet"] and cached.read_bytes() == b"previous"


def test_csv_without_dates_or_with_mixed_frequency(tmp_path):
    (tmp_path / "bad.csv").write_text("ticker,close\nKO,1.0\nPEP,2.0\n")
    with pytest.raises(ValueError, match="must hold dates"):
        load_prices("csv", path=tmp_path / "bad.csv")
    days = pd.bdate_range("2020-01-01", periods=80, name="date")
    frame = pd.DataFrame({"DAILY": np.linspace(1, 2, 80), "MONTHLY": np.where(np.arange(80) % 21 == 0, 1.0, np.nan)}, index=days)
    frame.to_csv(tmp_path / "mixed.csv")
    with pytest.raises(ValueError, match="MONTHLY"):
        load_prices("csv", path=tmp_path / "mixed.csv")
