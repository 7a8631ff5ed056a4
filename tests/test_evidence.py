"""hrl_fund.evidence on stage 05's own synthetic inputs: the fund's cost curve gives back the net Sharpe ratio at the
pipeline's cost, trials come from the training reports, the analysis is reproducible, and bad input is named."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from hrl_fund.evaluation import evaluate, read_stage_inputs, write_synthetic_inputs
from hrl_fund.evidence import (
    bootstrap_record,
    check_strategies,
    evidence_report,
    fund_strategies,
    fund_trials,
    multi_asset_trials,
    strategy,
    system_evidence,
)

SEGMENTS = {"specialist_train": ["2012-01-03", "2014-12-31"], "specialist_val": ["2015-01-02", "2015-12-31"],
            "cio_train": ["2016-01-04", "2017-06-30"], "cio_val": ["2017-07-03", "2017-12-29"],
            "test": ["2018-01-02", "2019-06-28"]}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def fund(tmp_path_factory):
    root = tmp_path_factory.mktemp("fund")
    write_synthetic_inputs(root, SEGMENTS, SEEDS, cost_bps=5.0)
    inputs = read_stage_inputs(root, SEEDS)
    evaluation = evaluate(inputs, SEGMENTS, cost_bps=5.0, window=63, refit_every=21)
    trials = fund_trials(inputs["report"])
    return {"root": root, "inputs": inputs, "evaluation": evaluation, "trials": trials,
            "strategies": fund_strategies(evaluation, trials)}


def test_trials_are_read_from_the_report_and_charged_to_the_policies(fund):
    assert fund["trials"] == {"transformer checkpoints scored on cio_val": 15, "mlp checkpoints scored on cio_val": 15,
                              "tuning trials": 0}
    strategies = fund["strategies"]
    assert strategies["cio"]["n_trials"] == strategies["ablation"]["n_trials"] == 30
    assert strategies["best_single"]["n_trials"] == 6  # the risky sleeves it was picked from
    assert strategies["equal_weight"]["n_trials"] == 1


def test_the_flat_cost_at_the_pipelines_cost_is_the_engines_cost(fund):
    evidence = system_evidence(fund["strategies"], SEEDS, fund["trials"], [("cio", "equal_weight")])
    for key, run in fund["evaluation"]["runs"].items():
        net = run["returns"].iloc[:-1]
        expected = (net.mean() / net.std() * math.sqrt(252)).mean()
        assert evidence["curves"].loc[5.0, key] == pytest.approx(expected, abs=1e-10), key
    assert (evidence["curves"].diff().iloc[1:] < 0).all().all()  # every strategy trades, so cost always hurts


def test_the_evidence_is_reproducible_and_paired(fund):
    pairs = [("cio", "equal_weight"), ("cio", "ablation")]
    first = evidence_report(system_evidence(fund["strategies"], SEEDS, fund["trials"], pairs))
    second = evidence_report(system_evidence(fund["strategies"], SEEDS, fund["trials"], pairs))
    assert json.dumps(first, sort_keys=True, default=float) == json.dumps(second, sort_keys=True, default=float)
    assert [row["name"] for row in first["paired"]] == ["cio_vs_equal_weight", "cio_vs_ablation"]
    for row in first["paired"]:
        assert row["low"] <= row["difference"] <= row["high"] and 0 <= row["p_bootstrap"] <= 1


def test_a_policy_file_with_a_missing_seed_is_named(fund, tmp_path):
    write_synthetic_inputs(tmp_path, SEGMENTS, SEEDS, cost_bps=5.0)
    path = tmp_path / "outputs/cio/test_returns.parquet"
    pd.read_parquet(path).drop(columns="seed_1").to_parquet(path)
    with pytest.raises(ValueError, match=r"test_returns.parquet has columns \['seed_0', 'seed_2'\] but params.yaml "
                                         r"seeds give \['seed_0', 'seed_1', 'seed_2'\]"):
        read_stage_inputs(tmp_path, SEEDS)
    with pytest.raises(ValueError, match=r"lists seeds \['seed_0', 'seed_1', 'seed_2'\] for"):
        read_stage_inputs(fund["root"], [0, 1, 2, 3])
    cio = fund["strategies"]["cio"]
    dropped = {"cio": {**cio, "returns": cio["returns"].drop(columns="seed_1")}}
    with pytest.raises(ValueError, match=r"strategy 'cio'.*missing \['seed_1'\]"):
        check_strategies(dropped, SEEDS)


def test_a_trial_count_of_zero_is_named(fund):
    report = json.loads((fund["root"] / "reports/cio_training.json").read_text())
    for entry in report["policies"].values():
        for run in entry["seeds"].values():
            run["evaluations"] = 0
    with pytest.raises(ValueError, match="records no configurations tried"):
        fund_trials(report)
    with pytest.raises(ValueError, match="records no 'evaluations'"):
        multi_asset_trials({"runs": {"agent": {"seed_0": {"fold_0": {}}}}})
    baseline = fund["strategies"]["equal_weight"]
    with pytest.raises(ValueError, match=r"'equal_weight': the number of trials must be a whole number >= 1, got 0"):
        check_strategies({"equal_weight": {**baseline, "n_trials": 0}}, SEEDS)


def test_a_series_shorter_than_the_block_is_named():
    days = pd.bdate_range("2020-01-01", periods=15)
    returns = pd.DataFrame({"run": np.random.default_rng(0).normal(0.001, 0.01, 15)}, index=days)
    entry = strategy("x", returns, returns, returns.abs(), seeded=False, n_trials=1)
    with pytest.raises(ValueError, match="15 days is too short for a bootstrap with mean block 10"):
        bootstrap_record({"x": entry}, block=10)
    with pytest.raises(ValueError, match="needs at least 10 observations, got 5"):
        bootstrap_record({"x": {**entry, "returns": returns.iloc[:5]}})
