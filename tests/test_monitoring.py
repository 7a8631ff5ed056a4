"""hrl_fund.monitoring: the exposition parses back with prometheus_client's own parser, KS equals scipy's, PSI and KS
are invariant to a monotone transform, the vectorised table equals the one-feature functions under NaN, the committed
settings validate and bad ones are named, the gap uses the paper's metrics, and one day's check slices its window and
carries the retrain trigger across a restart."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats

from conftest import REPO
from hrl_fund.config import load_params, write_json
from hrl_fund.metrics import annual_return, sharpe_ratio
from hrl_fund.monitoring import (
    MonitoringSettings,
    RetrainTrigger,
    Sample,
    feature_drift,
    ks_statistic,
    monitor,
    monitoring_metrics,
    performance_gap,
    prometheus_text,
    psi,
)


@pytest.fixture
def settings():
    return MonitoringSettings.from_params(load_params(REPO / "params.yaml")["serving"]["monitoring"])


def _day(settings, n_live=None, seed=0, shift=0.0):
    n_live = settings.window + 37 if n_live is None else n_live  # more live days than the window looks at
    rng = np.random.default_rng(seed)
    names = ["momentum", 'odd "name"\\with\nbreaks', "vix_pct_252"]
    reference = rng.standard_normal((800, 3))
    live = rng.standard_normal((n_live, 3)) + shift
    live[:10, 2] = np.nan  # listed late
    fund = 0.0002 + 0.01 * rng.standard_normal(n_live)
    benchmarks = {"equal_weight": 0.001 + 0.01 * rng.standard_normal(n_live), "cash": np.zeros(n_live)}
    return reference, live, names, fund, benchmarks


def test_the_exposition_parses_back_with_prometheus_client(settings):
    reference, live, names, fund, benchmarks = _day(settings, shift=0.5)
    trigger = RetrainTrigger(settings)
    result = monitor("2024-03-04", reference, live, names, fund, benchmarks, settings, trigger)
    text = prometheus_text(result["metrics"])
    assert text == prometheus_text(monitoring_metrics(result["drift"], result["gap"], trigger))
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) == {"hrl_fund_feature_psi", "hrl_fund_feature_ks", "hrl_fund_feature_drifted",
                             "hrl_fund_drift_share", "hrl_fund_live_days", "hrl_fund_live_return_annual",
                             "hrl_fund_live_sharpe_ratio", "hrl_fund_benchmark_return_annual",
                             "hrl_fund_benchmark_shortfall", "hrl_fund_drift_days", "hrl_fund_underperformance_days",
                             "hrl_fund_retrain_trigger"}
    assert all(family.type == "gauge" for family in families.values())
    psi_values = {sample.labels["feature"]: sample.value for sample in families["hrl_fund_feature_psi"].samples}
    assert psi_values == pytest.approx(result["drift"]["psi"].to_dict(), rel=1e-15)  # the odd name survives escaping
    shortfalls = {sample.labels["benchmark"]: sample.value for sample in families["hrl_fund_benchmark_shortfall"].samples}
    assert shortfalls == pytest.approx({name: entry["shortfall"] for name, entry in result["gap"]["benchmarks"].items()})
    [days] = families["hrl_fund_live_days"].samples
    assert days.value == settings.window  # the check looked at the last `window` days only
    assert families["hrl_fund_drift_share"].samples[0].value == result["drift"]["drifted"].mean()


def test_nan_and_infinite_values_and_help_text_parse_back():
    text = prometheus_text([Sample("a_metric", math.nan, {"x": "1"}, help="line one\nline two \\ end"),
                            Sample("a_metric", math.inf, {"x": "2"}, help="line one\nline two \\ end"),
                            Sample("b_total", 3, kind="counter", help="a count")])
    [first, second] = text_string_to_metric_families(text)
    assert first.documentation == "line one\nline two \\ end"
    assert math.isnan(first.samples[0].value) and first.samples[1].value == math.inf
    assert (second.name, second.type, second.samples[0].value) == ("b", "counter", 3.0)


@pytest.mark.parametrize("bad, message", [(Sample("1st", 1.0), "metric name '1st'"),
                                          (Sample("ok", 1.0, {"le-gal": "x"}), "label name 'le-gal'"),
                                          (Sample("ok", None), "value None is not a number")])
def test_bad_samples_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        prometheus_text([bad])


@pytest.mark.parametrize("seed", range(6))
def test_ks_equals_scipy_and_both_statistics_ignore_monotone_transforms(seed):
    rng = np.random.default_rng(seed)
    reference, live = rng.standard_t(4, 400 + 37 * seed), rng.standard_t(4, 30 + 11 * seed) * 1.3 + 0.2
    if seed % 2:
        reference, live = reference.round(1), live.round(1)  # ties
    assert ks_statistic(reference, live) == pytest.approx(stats.ks_2samp(reference, live).statistic, abs=1e-12)
    transform = lambda values: np.exp(values / 3) * 7 - 2  # strictly increasing
    assert ks_statistic(transform(reference), transform(live)) == pytest.approx(ks_statistic(reference, live), abs=1e-12)
    assert psi(transform(reference), transform(live)) == pytest.approx(psi(reference, live), abs=1e-12)


def test_the_vectorised_table_equals_the_one_feature_functions(settings):
    reference, live, names, _, _ = _day(settings, n_live=100)
    reference[:300, 0] = np.nan
    reference[:, 1] = reference[:, 1].round(0)  # a few heavily tied values
    frame = feature_drift(reference, live, names, settings, bins=7)
    for column, name in enumerate(names):
        kept = reference[:, column][~np.isnan(reference[:, column])]
        assert frame.loc[name, "psi"] == pytest.approx(psi(kept, live[:, column], bins=7), abs=1e-12)
        assert frame.loc[name, "ks"] == pytest.approx(ks_statistic(kept, live[:, column][~np.isnan(live[:, column])]), abs=1e-12)
    assert frame["n_reference"].tolist() == [500, 800, 800] and frame["n_live"].tolist() == [100, 100, 90]
    assert frame["judged"].all()


def test_a_shift_is_seen_and_sameness_is_not(settings):
    rng = np.random.default_rng(7)
    reference = rng.standard_normal((2000, 4))
    same = feature_drift(reference, rng.standard_normal((500, 4)), list("abcd"), settings)
    moved = feature_drift(reference, rng.standard_normal((500, 4)) + [0, 0.5, 1.0, 0], list("abcd"), settings)
    assert not same["drifted"].any()
    assert moved["drifted"].tolist() == [False, True, True, False]


def test_the_committed_settings_validate_and_bad_ones_are_named(settings):
    assert settings.window == 126 and settings.persist_days == 5
    for block, message in [({"psi_threshold": 2}, "serving.monitoring.psi_threshold must be a number in (0, 1], got 2"),
                           ({"ks_threshold": -0.2}, "serving.monitoring.ks_threshold must be a number in (0, 1], got -0.2"),
                           ({"drift_share": 1.01}, "serving.monitoring.drift_share must be a number in (0, 1], got 1.01"),
                           ({"min_days": True}, "serving.monitoring.min_days must be an integer >= 1, got True"),
                           ({"window": 5}, "serving.monitoring.min_days = 21 exceeds window = 5"),
                           ({"persist": 3}, "serving.monitoring: unknown key 'persist'")]:
        with pytest.raises(ValueError) as error:
            MonitoringSettings.from_params(block)
        assert message in str(error.value)


def test_the_gap_uses_the_papers_metrics(settings):
    _, _, _, fund, benchmarks = _day(settings)
    gap = performance_gap(fund, benchmarks, periods_per_year=252)
    assert gap["annual_return"] == annual_return(fund) and gap["sharpe_ratio"] == sharpe_ratio(fund)
    assert gap["benchmarks"]["equal_weight"]["shortfall"] == annual_return(benchmarks["equal_weight"]) - annual_return(fund)
    assert gap["benchmarks"]["cash"]["shortfall"] == -annual_return(fund)


def test_the_trigger_survives_a_restart_and_refuses_old_days(settings, tmp_path):
    reference, live, names, fund, benchmarks = _day(settings, n_live=200, shift=1.5)
    days = pd.bdate_range("2024-03-01", periods=8)
    trigger = RetrainTrigger(settings)
    for day in days[:3]:
        assert not monitor(day, reference, live, names, fund, benchmarks, settings, trigger)["retrain"]
    path = write_json(tmp_path / "trigger.json", trigger.to_dict())
    restored = RetrainTrigger.from_dict(json.loads(path.read_text()), settings)
    fired = [monitor(day, reference, live, names, fund, benchmarks, settings, restored)["retrain"] for day in days[3:]]
    assert fired == [False, True, True, True, True] and restored.reason.startswith("drift")
    assert restored.fired_on == days[4].date()
    with pytest.raises(ValueError, match="is not after the last one counted"):
        restored.update(days[2], False, False)
    with pytest.raises(ValueError, match="retrain trigger state last_date must be a date"):
        RetrainTrigger.from_dict({"last_date": "March"}, settings)
