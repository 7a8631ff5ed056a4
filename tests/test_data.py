"The data layer across notebooks: the build benchmark within its budget, universes, crypto dating and cross-check, the multi-asset panel (offline and from a user's file), and bad input."
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, REPO, run
from hrl_fund.config import load_params, save_parquet, write_json
from hrl_fund.data import (
    MULTI_ASSET_META_COLUMNS,
    OFFLINE_TICKERS,
    DataSourceError,
    cross_check,
    crypto_closes,
    load_prices,
    multi_asset_panel,
    noisy_days,
    read_raw,
    tbill_rate,
    trading_calendar,
    universe,
    validate,
)
from hrl_fund.markets import synthetic_crypto


@pytest.fixture(scope="module")
def multi_asset():
    "universe('multi_asset') with the pipeline's market settings, built once for this module"
    markets = load_params(REPO / "params.yaml")["markets"]
    return universe("multi_asset", markets=markets, seed=markets.get("seed", 0))


def test_build_benchmark_within_budget(tmp_path):
    "Every processed dataset and feature set from the raw snapshot: at most 60 s and 4 GiB"
    out = tmp_path / "data.json"
    run([str(BIN / "python"), "-m", "hrl_fund.data", "bench", "--params", str(REPO / "params.yaml"), "--out", str(out)],
        REPO)
    result = json.loads(out.read_text())
    assert result["wall_s"] <= 60 and result["peak_rss_mb"] <= 4096, result
    assert result["fund_features"][1] >= 50 * result["fund_panel"][1]


def test_multi_asset_universe_covers_every_sleeve(multi_asset):
    prices, meta = multi_asset
    real = meta.index[~meta["synthetic"]]
    assert len(real) >= 20 and {"BTC", "ETH"} <= set(real)
    assert {"crypto", "equity", "bond", "cash", "volatility_hedge"} <= set(meta["asset_class"])
    assert meta.loc[meta["source"].str.startswith("synthetic"), "synthetic"].all()
    assert list(prices.columns) == list(meta.index)


def _fund_digest(frame: pd.DataFrame, findings: list[dict]) -> str:
    "SHA-256 of a panel's values, dates, columns and findings"
    content = [np.ascontiguousarray(frame.to_numpy(dtype="float64")).tobytes(),
               json.dumps([list(frame.index.strftime("%Y-%m-%d")), list(frame.columns), findings], sort_keys=True).encode()]
    return hashlib.sha256(b"".join(content)).hexdigest()


def test_fund_panel_is_unchanged_by_the_multi_asset_data():
    "The hierarchical fund rebuilds byte for byte: its panel, T-bill rate and findings are those before issue 12"
    data = load_params(REPO / "params.yaml")["data"]
    options = {key: data[key] for key in ("max_gap_days", "stale_run_days", "outlier_sigma", "bad_print_sigma")}
    fund, fund_findings = validate(universe("fund")[0].loc[data["start"]:data["end"]], **options)
    _, rate_findings = validate(tbill_rate().reindex(fund.index).to_frame(), positive=False, **options)
    assert _fund_digest(fund, fund_findings + rate_findings) == \
        "f1be8653f5610b1d33034a09a6a25c0c0aa3e3fce7cedba1f3d27b2f58006c46"


def _btc_sp500_correlations(btc: pd.Series) -> tuple[float, float]:
    "On 2019-2022 NYSE days: corr(BTC return at t, S&P 500 return at t) and corr(BTC return at t+1, S&P 500 at t)"
    days = trading_calendar()
    days = days[(days >= "2019-01-01") & (days <= "2022-12-31")]
    closes = pd.concat([btc.rename("BTC"), load_prices(tickers=["SP500"])["SP500"]], axis=1, sort=True).reindex(days)
    returns = np.log(closes).diff()
    return returns["BTC"].corr(returns["SP500"]), returns["BTC"].shift(-1).corr(returns["SP500"])


def test_crypto_is_dated_by_the_day_it_closed():
    "BTC moves with the S&P 500 of the same NYSE day and not with the next day's; the raw dating was a day late"
    same_day, next_day = _btc_sp500_correlations(load_prices(tickers=["BTC"])["BTC"])
    assert same_day > 0.25 and abs(next_day) < 0.1, (same_day, next_day)
    raw_same_day, raw_next_day = _btc_sp500_correlations(read_raw("btc")["price"])  # the dating before the fix
    assert abs(raw_same_day) < 0.1 and raw_next_day > 0.25, (raw_same_day, raw_next_day)
    assert OFFLINE_TICKERS["BTC"].day_shift == OFFLINE_TICKERS["ETH"].day_shift == 1
    assert load_prices(tickers=["ETH"]).index[0] == read_raw("eth").index[0] - pd.Timedelta(days=1)


def test_eth_2019_noisy_span_is_found_and_repaired():
    coins, findings = crypto_closes()
    spans = [finding for finding in findings if finding["check"] == "noisy_span"]
    repairs = {finding["date"]: finding for finding in findings if finding["action"] == "replace_by_ratio_envelope"}
    assert [(span["start"], span["end"], span["flagged"]) for span in spans] == [("2019-02-06", "2019-12-25", 269)]
    assert len(repairs) == 219 and all(date.startswith("2019") for date in repairs)
    assert all(finding["ticker"] == "ETH" and finding["replaced_by"] > 0 for finding in repairs.values())
    # the raw row 2019-06-25 (00:00 UTC) holds the close of 2019-06-24: 204 where other sources have about 310
    raw = load_prices(tickers=["ETH"])["ETH"]
    assert repairs["2019-06-24"]["value"] == pytest.approx(204.1, abs=0.1) == raw["2019-06-24"]
    assert abs(raw["2019-06-24"] / 310 - 1) > 0.3 and abs(coins.loc["2019-06-24", "ETH"] / 310 - 1) < 0.1
    assert coins.loc["2019-06-25", "ETH"] == pytest.approx(313.0, abs=0.1)
    # from the day after the first flagged one; the dips before the flag comes on (2019-02-05 above all) stay
    lag_one = {name: np.log(series).diff().loc["2019-02-07":"2019-12-31"].autocorr()
               for name, series in [("raw", raw), ("repaired", coins["ETH"])]}
    assert lag_one["raw"] < -0.3 and abs(lag_one["repaired"]) < 0.15, lag_one  # the feed's fake mean reversion is gone
    pd.testing.assert_series_equal(coins["BTC"], load_prices(tickers=["BTC"])["BTC"])  # the anchor is never changed


@pytest.mark.parametrize("t0", ["2019-03-15", "2019-06-24", "2019-10-01"])
def test_cross_check_is_causal(t0):
    "Scrambling ETH and BTC after t0 changes neither the flags nor the repaired ETH up to t0"
    prices = load_prices("offline", ["BTC", "ETH"])
    later = prices.index > t0
    rng = np.random.default_rng(0)
    perturbed = prices.copy()
    perturbed.loc[later] *= np.exp(rng.normal(0.0, 0.2, size=(later.sum(), 2)))
    flags = [noisy_days(frame, "ETH", "BTC").loc[:t0] for frame in (prices, perturbed)]
    pd.testing.assert_frame_equal(*flags)
    assert flags[0]["flagged"].any()
    (checked, findings), (checked_perturbed, findings_perturbed) = [cross_check(frame, "ETH", "BTC") for frame in (prices, perturbed)]
    pd.testing.assert_frame_equal(checked.loc[:t0], checked_perturbed.loc[:t0])
    assert not checked_perturbed.loc[later].equals(checked.loc[later])  # the perturbation did bite
    def repairs_to_t0(found: list[dict]) -> list[dict]:  # the span is a report written with hindsight
        return [{key: value for key, value in finding.items() if key != "span"} for finding in found
                if finding["action"] != "reported" and finding["date"] <= t0]
    assert repairs_to_t0(findings) == repairs_to_t0(findings_perturbed) != []


@pytest.mark.parametrize("ticker, anchor", [("ETH", "BTC"), ("KO", "PEP"), ("XOM", "CVX"), ("MSFT", "SP500")])
def test_cross_check_leaves_clean_pairs_alone(ticker, anchor):
    frame = load_prices(tickers=[ticker, anchor])
    if anchor == "BTC":
        frame = frame.loc["2020-01-01":]  # after the noisy span
    checked, findings = cross_check(frame, ticker, anchor)
    assert findings == []
    pd.testing.assert_frame_equal(checked, frame)


def test_multi_asset_lists_late_instead_of_truncating(multi_asset):
    prices, meta = multi_asset
    assert (prices.index[0], prices.index[-1]) == (pd.Timestamp("1990-01-02"), pd.Timestamp("2022-12-28"))
    first = prices.apply(pd.Series.first_valid_index)
    assert first["MTUM"] == pd.Timestamp("2014-01-02") and prices["MTUM"].loc[:"2014-01-01"].isna().all()
    assert first["BTC"] == pd.Timestamp("2018-08-21") and prices["BTC"].loc[:"2018-08-20"].isna().all()
    assert first["ETH"] == pd.Timestamp("2018-08-22")
    assert (first[meta.index[meta["synthetic"]]] >= first["ETH"]).all()  # generated only where BTC and ETH exist
    assert (first[["SP500", "AAPL", "UST_2Y", "UST_20_30Y", "CASH", "TAIL_HEDGE"]] == prices.index[0]).all()
    clean, _ = validate(prices, derived=list(meta.index[meta["licence"] == "derived"]))
    pd.testing.assert_series_equal(clean.apply(pd.Series.first_valid_index), first)  # never filled backwards
    assert not clean.isna().to_numpy()[prices.notna().cummax().to_numpy()].any()  # and complete once listed


def test_multi_asset_notes_say_what_stands_in_for_the_seed_paper(multi_asset):
    meta = multi_asset[1]
    assert meta["note"].str.len().gt(0).all() and meta["synthetic"].dtype == bool
    synthetic = meta.loc[meta["synthetic"], "note"]
    assert len(synthetic) == 3 and synthetic.str.startswith("synthetic: BTC/ETH factor model").all()
    assert synthetic.str.contains("SOL/ADA").all()
    assert meta.loc["TAIL_HEDGE", "note"].startswith("real-derived") and "VXX/UVXY" in meta.loc["TAIL_HEDGE", "note"]
    assert meta.loc[["UST_2Y", "UST_7_10Y", "UST_20_30Y"], "note"].str.contains("BND/IEF").all()
    assert "BIL/SHV" in meta.loc["CASH", "note"]


def test_synthetic_names_compound_like_crypto(multi_asset):
    "Over 2019-2022 no synthetic name grows more than three times what BTC or ETH did (before the fix: 11 to 180 times)"
    prices, meta = multi_asset
    window = prices.loc["2019-01-02":"2022-12-28"]
    growth = window.iloc[-1] / window.iloc[0]
    names = meta.index[meta["synthetic"]]
    assert (growth[names] < 3 * growth[["BTC", "ETH"]].max()).all(), growth


def test_synthetic_drift_on_the_real_factors():
    "Names' mean annual log growth = loadings x factor log growth - drift_adjustment, within 4 standard errors"
    factors = np.log(crypto_closes()[0].dropna()).diff().dropna().loc["2019-01-01":"2022-12-28"]
    n_names = 1000
    btc_beta = np.linspace(0.3, 0.9, n_names)
    loadings = np.column_stack([btc_beta, 1.2 - btc_beta])  # (n_names, 2)
    prices, meta = synthetic_crypto(factors["BTC"], factors["ETH"], [f"N{number}" for number in range(n_names)],
                                    np.random.default_rng(0), loadings=loadings)
    years = len(factors) / 365
    growth = np.log(prices.iloc[-1] / prices.iloc[0]).to_numpy() / years  # (n_names,)
    expected = loadings @ factors.sum().to_numpy() / years - meta["drift_adjustment"].to_numpy()
    gap = growth - expected
    standard_error = gap.std(ddof=1) / math.sqrt(n_names)
    assert abs(gap.mean()) < 4 * standard_error, (gap.mean(), standard_error)
    assert meta["drift_adjustment"].iloc[0] > 10 * standard_error  # the correction matters at this precision


EVERY_DAY = pd.date_range("2020-01-01", "2020-01-31", name="date")
WEEKDAYS = EVERY_DAY[EVERY_DAY.day_of_week < 5]
OWN_CLASSES = {"COIN": "crypto", "STOCK": "equity", "LATE": "equity"}


def _own_file(tmp_path, change=None, columns=None):
    "A user's CSV: COIN trades every day (+1% a day), STOCK on weekdays with a missing 2020-01-15, LATE lists on the 11th weekday from the end"
    walk = np.exp(np.cumsum(np.random.default_rng(5).normal(0.0, 0.01, len(WEEKDAYS))))  # (n_weekdays,)
    frame = pd.DataFrame({"COIN": 100.0 * np.exp(0.01 * np.arange(len(EVERY_DAY)))}, index=EVERY_DAY)
    frame["STOCK"] = pd.Series(50.0 * walk, index=WEEKDAYS)
    frame.loc["2020-01-15", "STOCK"] = np.nan
    frame["LATE"] = pd.Series(20.0 * walk[::-1][-15:], index=WEEKDAYS[-15:])
    if change is not None:
        frame = change(frame)
    path = tmp_path / "own.csv"
    frame[columns or list(frame.columns)].to_csv(path)
    return path


def test_csv_panel_exchange_calendar_late_listing_repair_and_cash(tmp_path):
    prices, meta, findings = multi_asset_panel("csv", path=_own_file(tmp_path), asset_classes=OWN_CLASSES)
    assert list(prices.index) == list(WEEKDAYS)  # the stocks' days: no weekend rows
    assert prices.loc["2020-01-06", "COIN"] / prices.loc["2020-01-03", "COIN"] == pytest.approx(math.exp(0.03))
    assert prices["LATE"].loc[:WEEKDAYS[-16]].isna().all() and prices["LATE"].loc[WEEKDAYS[-15]:].notna().all()
    assert findings == [{"check": "missing", "ticker": "STOCK", "date": "2020-01-15", "rows": 1, "action": "ffill_gap"}]
    assert prices.loc["2020-01-15", "STOCK"] == prices.loc["2020-01-14", "STOCK"]
    assert list(prices.columns) == ["COIN", "STOCK", "LATE", "CASH"]
    assert list(meta.index) == list(prices.columns) and list(meta.columns) == MULTI_ASSET_META_COLUMNS
    assert meta.loc["CASH", "asset_class"] == "cash" and meta["asset_class"].eq("cash").sum() == 1
    assert meta.loc["LATE", "first_date"] == WEEKDAYS[-15] and meta.loc["COIN", "first_date"] == EVERY_DAY[0]
    assert prices["CASH"].iloc[0] == 1.0  # 2020-01-01 (a holiday) carries 2019-12-31's index; 01-02 earns its rate
    assert prices.loc["2020-01-02", "CASH"] == pytest.approx(1 + tbill_rate().loc["2019-12-31"] / 100 / 252)
    assert prices.loc["2020-01-06", "CASH"] / prices.loc["2020-01-03", "CASH"] == pytest.approx(
        1 + tbill_rate().loc["2020-01-03"] / 100 / 252)  # one NYSE day over the weekend


def test_csv_panel_all_dates_and_crypto_only(tmp_path):
    prices, _, findings = multi_asset_panel("csv", path=_own_file(tmp_path), asset_classes=OWN_CLASSES, calendar="all")
    assert list(prices.index) == list(EVERY_DAY)
    assert prices.loc["2020-01-04":"2020-01-05", "STOCK"].eq(prices.loc["2020-01-03", "STOCK"]).all()
    weekend = {"check": "missing", "ticker": "STOCK", "date": "2020-01-04", "rows": 2, "action": "ffill_gap"}
    assert weekend in findings
    assert prices.loc["2020-01-04", "CASH"] == prices.loc["2020-01-03", "CASH"]  # cash accrues on NYSE days only
    coins, _, _ = multi_asset_panel("csv", path=_own_file(tmp_path, columns=["COIN"]), asset_classes={"COIN": "crypto"})
    assert list(coins.index) == list(EVERY_DAY)  # only crypto: every date is kept


def test_csv_panel_reads_an_asset_class_file_and_keeps_the_users_cash(tmp_path):
    (tmp_path / "classes.csv").write_text("ticker,asset_class\nCOIN,crypto\nSTOCK,cash\nLATE,equity\n")
    prices, meta, _ = multi_asset_panel("csv", path=_own_file(tmp_path), asset_classes=tmp_path / "classes.csv")
    assert "CASH" not in prices and list(meta.index[meta["asset_class"] == "cash"]) == ["STOCK"]


def _zero_on_the_8th(frame):
    return frame.assign(STOCK=frame["STOCK"].where(frame.index != "2020-01-08", 0.0))


@pytest.mark.parametrize("classes, change, calendar, message", [
    ({"COIN": "crypto", "STOCK": "equity"}, None, "exchange", r"no asset class for ticker\(s\) \['LATE'\]"),
    ({**OWN_CLASSES, "GOLD": "commodity"}, None, "exchange", r"ticker\(s\) \['GOLD'\] that are not columns"),
    ({**OWN_CLASSES, "EMPTY": "bond"}, lambda frame: frame.assign(EMPTY=np.nan), "exchange",
     r"no prices at all for ticker\(s\) \['EMPTY'\]"),
    (OWN_CLASSES, _zero_on_the_8th, "exchange", "STOCK: non-positive price 0.0 on 2020-01-08"),
    (OWN_CLASSES, None, "weekly", "calendar must be one of"),
    (None, None, "exchange", "needs asset_classes"),
])
def test_csv_panel_refuses_bad_input_naming_it(tmp_path, classes, change, calendar, message):
    with pytest.raises(ValueError, match=message):
        multi_asset_panel("csv", path=_own_file(tmp_path, change), asset_classes=classes, calendar=calendar)


def test_offline_panel_without_stage_00_and_from_its_output(tmp_path):
    prices, meta, findings = multi_asset_panel("offline", path=tmp_path / "missing" / "multi_asset.parquet")
    assert (prices.index[0], prices.index[-1]) == (pd.Timestamp("1999-01-04"), pd.Timestamp("2022-12-28"))
    assert list(meta.index) == list(prices.columns) and list(meta.columns) == MULTI_ASSET_META_COLUMNS
    assert meta["asset_class"].eq("cash").sum() == 1
    assert {"check": "noisy_ratio", "date": "2019-06-24"} in [
        {key: finding.get(key) for key in ("check", "date")} for finding in findings]
    stage = tmp_path / "outputs" / "data" / "multi_asset.parquet"
    save_parquet(prices, stage)
    save_parquet(meta.astype({"synthetic": bool}), stage.with_name("multi_asset_meta.parquet"))
    write_json(tmp_path / "reports" / "data_validation.json", {"findings": [{**finding, "panel": "multi_asset"} for finding in findings]})
    again, again_meta, again_findings = multi_asset_panel("offline", path=stage)
    pd.testing.assert_frame_equal(again, prices, check_freq=False)
    assert list(again_meta.index) == list(meta.index) and len(again_findings) == len(findings)
    save_parquet(meta.drop(columns=["note"]), stage.with_name("multi_asset_meta.parquet"))
    with pytest.raises(ValueError, match="rerun stage 00"):
        multi_asset_panel("offline", path=stage)


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
