"""The whole pipeline on a throw-away copy of the repository, at smoke scale: `dvc repro` to the PDF, bad input,
determinism, and `dvc exp run -S algo.lr=0.0003`. Takes a few minutes."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, copy_repo, run, tool_env

DVC = str(BIN / "dvc")
MULTI_ASSET_FILES = ["multi_asset_table.tex", "multi_asset_stress_table.tex", "multi_asset_folds_table.tex",
                     "multi_asset_universe_table.tex", "hierarchy_table.tex", "multi_asset_numbers.tex",
                     "multi_asset_equity.pdf", "multi_asset_allocation.pdf", "multi_asset_stress.pdf"]
PYTHON = str(BIN / "python")
EVIDENCE_FILES = [f"{stem}_{name}" for stem in ("evidence", "multi_asset_evidence")
                  for name in ("intervals_table.tex", "selection_table.tex", "paired_table.tex", "costs_table.tex",
                               "costs.pdf", "numbers.tex")] + [
    "specialists_test_table.tex", "attribution_table.tex", "attribution_rolling.pdf", "attribution_numbers.tex",
    "stress_table.tex", "stress_numbers.tex", "multi_asset_crash_table.tex", "multi_asset_shock_table.tex",
    "specialist_crash_table.tex", "specialist_shock_table.tex", "specialist_stress_numbers.tex"]


def smoke_params(params: dict) -> dict:
    "The committed params.yaml shrunk to smoke scale: short segments, tiny trainings, two seeds"
    params["data"].update(start="2010-06-01", end="2019-12-31")
    params["segments"] = {"specialist_train": ["2012-01-03", "2014-12-31"], "specialist_val": ["2015-01-02", "2015-12-31"],
                          "cio_train": ["2016-01-04", "2017-12-29"], "cio_val": ["2018-01-02", "2018-12-31"],
                          "test": ["2019-01-02", "2019-12-31"]}
    params["algo"].update(total_timesteps=512, n_steps=128, batch_size=64, n_epochs=2, n_envs=1, eval_freq=256,
                          net_arch=[32, 32])
    for off_policy in ("DQN", "DDPG"):
        params["algo"][off_policy].update(total_timesteps=512, learning_starts=128, buffer_size=2048)
    params["seeds"] = [0, 1]
    smoke_checks = {"stat_arb": {"check_paths": 40, "check_bars": 300, "formation": params["segments"]["specialist_train"]},
                    "factor_tracking": {"check_steps": 500}, "vol_trading": {"check_years": 20, "accounting_steps": 500},
                    "futures_spreads": {"check_bars": 300}, "fx_arbitrage": {"check_paths": 6, "accounting_steps": 500},
                    "market_making": {"check_paths": 5000, "equivalence_seeds": 10, "equivalence_episodes": 100,
                                      "replications": 40},
                    # the smoke training segment (2012-14) is calm: at its calibrated volatility the Whalley-Wilmott
                    # band's gain over daily delta is within noise, so the smoke check uses the full run's volatility
                    "delta_hedging": {"check_paths": 5000, "gbm": {"sigma": 0.2, "mu": 0.05}}}
    for name, settings in smoke_checks.items():
        params["specialists"][name].update(settings)
    params["cio"]["algo"] = {"total_timesteps": 512}
    params["multi_asset"].update(train_start="2011-01-03", progress_bar=False, episode_length=126,
                                 algo={"total_timesteps": 512, "n_envs": 4, "n_steps": 64},
                                 transformer={"d_model": 16, "n_heads": 2, "n_layers": 1, "dim_feedforward": 32,
                                              "attend": "sleeves"})
    return params


def params_specialists(root: Path) -> list[str]:
    return list(yaml.safe_load((root / "params.yaml").read_text())["specialists"])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(smoke_params(params), sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], root)
    run(["git", "config", "user.name", "hrl_fund tests"], root)
    run(["git", "config", "user.email", "tests@hrl-fund.invalid"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "smoke copy"], root)
    run([DVC, "pull", "-q", "data.dvc"], root)
    return root


def test_stage_before_its_inputs_names_the_missing_file(workspace):
    output = "outputs/notebooks/03_master_env.ipynb"
    result = run([PYTHON, "-m", "hrl_fund.config", "stage", "nbs/03_master_env.ipynb", output,
                  "--sections", "segments,cio,specialists"], workspace, check=False)
    assert result.returncode != 0
    assert "specialists/stat_arb" in result.stdout and "stage 02" in result.stdout, result.stdout[-2000:]
    assert not (workspace / output).exists() and not (workspace / "outputs/cio/streams.parquet").exists()


@pytest.mark.parametrize("edit, message", [
    ("algo:\n  lr: 3e-4\n", "algo.lr must be a number"),
    ("algo:\n  learning_rate: 0.1\n", "unknown key algo.learning_rate"),
    ("optimiser:\n  lr: 0.1\n", "unknown key optimiser"),
])
def test_bad_params_stop_before_any_notebook_runs(workspace, edit, message):
    params_file = workspace / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params.update(yaml.safe_load(edit) if "optimiser" in edit else {"algo": {**params["algo"], **yaml.safe_load(edit)["algo"]}})
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        result = run([DVC, "repro", "data"], workspace, check=False)
    finally:
        params_file.write_text(original)
    assert result.returncode != 0 and message in result.stdout, result.stdout[-3000:]
    assert not (workspace / "outputs/notebooks/00_data.ipynb").exists()


def test_corrupted_raw_file_is_named(workspace):
    target = workspace / "data/raw/stocks.parquet"
    original = target.read_bytes()
    target.write_bytes(original[: len(original) // 2])
    try:
        result = run([PYTHON, "-m", "hrl_fund.snapshot", "verify", "data/raw"], workspace, check=False)
        assert result.returncode != 0 and "stocks.parquet is corrupted" in result.stdout
    finally:
        target.write_bytes(original)


@pytest.fixture(scope="module")
def reproduced(workspace) -> Path:
    run([DVC, "repro"], workspace, timeout=1800)
    run(["git", "add", "-A"], workspace)
    run(["git", "commit", "-q", "-m", "smoke results"], workspace)
    return workspace


def test_repro_builds_everything_to_the_pdf(reproduced):
    pdf = reproduced / "paper/main.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")
    for name in ["results_table.tex", "numbers.tex", "equity_curves.pdf", "data_table.tex", "data_numbers.tex",
                 "eda_prices.pdf", "eda_correlation.pdf", "eda_vol_regimes.pdf", "env_summary.tex",
                 "envs/market_making.pdf", "envs/delta_hedging_checks.tex", "cio_allocation.pdf",
                 "contributions_table.tex", "contributions.pdf", "specialists_table.tex"] + MULTI_ASSET_FILES + EVIDENCE_FILES:
        assert (reproduced / "paper/generated" / name).exists(), name
    table = (reproduced / "paper/generated/results_table.tex").read_text()
    assert "\\toprule" in table and "\\bottomrule" in table
    metrics = json.loads((reproduced / "metrics/results.json").read_text())
    assert metrics, "metrics/results.json is empty"
    assert 0 <= metrics["evidence_cio_vs_equal_weight_p_bootstrap"] <= 1
    tearsheets = sorted(path.name for path in (reproduced / "reports/tearsheets").iterdir())
    assert {"cio.html", "ablation.html", "multi_asset_agent.html", "specialist_stat_arb.html"} <= set(tearsheets), tearsheets
    remote = re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", (reproduced / "reports/tearsheets/cio.html").read_text())
    assert remote is None, remote  # no asset to fetch (a URL in the SVG metadata text is not one)
    stress = json.loads((reproduced / "reports/stress.json").read_text())
    assert len(stress["shocks"]) == 4 and stress["windows"], stress["skipped"]
    assert len(stress["multi_asset_shocks"]["shocks"]) == 4
    specialist_stress = json.loads((reproduced / "reports/specialist_stress.json").read_text())
    sleeves = pd.read_parquet(reproduced / "outputs/cio/streams.parquet").columns  # a constant sleeve is dropped at stage 03
    allocated = sorted(str(name) for name in sleeves if name != "cash" and not str(name).endswith("_baseline"))
    assert sorted(specialist_stress["shocks"]) == allocated and set(allocated) <= set(params_specialists(reproduced))
    for name, report in specialist_stress["shocks"].items():  # every seed and the rule under each shock
        assert len(report["shocks"]) == 4 and len(report["reference"]["strategies"]["agent"]) == 2, name
        assert all(day is None or day >= report["shock_day"] for day in report["reached"].values()), (name, report["reached"])
    assert specialist_stress["shocks"]["stat_arb"]["reached"]["market_gap"] == specialist_stress["shocks"]["stat_arb"]["shock_day"]
    run([DVC, "plots", "show", "-o", "dvc_plots"], reproduced)
    page = (reproduced / "dvc_plots/index.html").read_text()
    assert "Fund equity" in page and "learning curves" in page and "CIO learning curves" in page
    validation = json.loads((reproduced / "reports/env_validation.json").read_text())
    assert sorted(validation) == sorted(params_specialists(reproduced))
    assert all(check["passed"] for block in validation.values() for check in block["checks"])
    status = run([DVC, "status"], reproduced).stdout
    assert "up to date" in status, status


def test_same_seed_same_results(reproduced):
    streams = [reproduced / "outputs/specialists" / name / "returns.parquet" for name in ("stat_arb", "fx_arbitrage")]
    allocator = reproduced / "outputs/cio/test_returns.parquet"
    before = [sha256(path) for path in streams], sha256(allocator), (reproduced / "metrics/results.json").read_text()
    for name in ("stat_arb", "fx_arbitrage"):  # PPO, and DDPG on an env that draws its quotes at every reset
        run([DVC, "repro", "--force", "--single-item", f"train_specialist@{name}"], reproduced)
    run([DVC, "repro", "--force", "--single-item", "train_cio"], reproduced)
    run([DVC, "repro"], reproduced)
    after = [sha256(path) for path in streams], sha256(allocator), (reproduced / "metrics/results.json").read_text()
    assert before == after


def _paper_bytes(root: Path) -> dict[str, str]:
    "sha256 of every file a reader of the paper sees: paper/generated/* and paper/main.pdf"
    files = sorted(path for path in (root / "paper/generated").rglob("*") if path.is_file()) + [root / "paper/main.pdf"]
    return {str(path.relative_to(root)): sha256(path) for path in files}


def test_a_second_full_run_gives_the_same_paper_bytes(reproduced):
    before = _paper_bytes(reproduced)
    assert len(before) > 40, sorted(before)
    run([DVC, "repro", "--force"], reproduced, timeout=1800)  # every stage again, data to PDF, same parameters
    after = _paper_bytes(reproduced)
    differing = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert not differing, f"a second run with the same parameters changed {differing}"


def test_exp_run_reruns_training_and_downstream_only(reproduced):
    result = run([DVC, "exp", "run", "-S", "algo.lr=0.0003"], reproduced, timeout=1800)
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
    assert {"train_specialist@stat_arb", "train_cio", "results"} <= ran, ran
    assert not ran & {"data", "env_validation"}, ran
    shown = json.loads(run([DVC, "exp", "show", "--json"], reproduced).stdout)
    text = json.dumps(shown)
    assert "0.0003" in text
    diff = json.loads(run([DVC, "metrics", "diff", "--json"], reproduced).stdout)
    changed = [key for path in diff.values() for key, value in path.items() if value.get("diff")]
    assert changed, f"no metric changed: {diff}"


def test_queued_experiments_run_two_at_a_time(reproduced):
    for beta in ("0.05", "0.2"):  # the CIO's volatility penalty: two queued experiments retrain only the CIO
        run([DVC, "exp", "run", "--queue", "-S", f"cio.reward.beta={beta}"], reproduced)
    # the workers it spawns inherit its stdout: with a pipe, waiting for EOF would wait for the workers to exit
    started = subprocess.run([DVC, "queue", "start", "-j", "2"], cwd=reproduced, env=tool_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    assert started.returncode == 0
    deadline = time.monotonic() + 1500
    while time.monotonic() < deadline:
        status = run([DVC, "queue", "status"], reproduced).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(10)
    else:
        raise AssertionError(f"queued experiments did not finish: {status}")
    run([DVC, "queue", "stop"], reproduced, check=False)
    assert status.count("Success") >= 2, status
    shown = json.dumps(json.loads(run([DVC, "exp", "show", "--json"], reproduced).stdout))
    assert "0.05" in shown and "0.2" in shown


def test_multi_asset_system_runs_on_a_users_csv(reproduced):
    "dvc exp run -S multi_asset.source=csv -S multi_asset.path=...: the whole system on prices the user brings"
    offline = pd.read_parquet(reproduced / "outputs/multi_asset/prices.parquet")
    users = offline[["SP500", "AAPL", "UST_7_10Y", "BTC", "MTUM"]].loc["2013-01-02":]  # MTUM lists in 2014, BTC in 2018
    users.loc[pd.Timestamp("2016-03-15"), "AAPL"] = float("nan")  # a missing day
    users.to_csv(reproduced / "my_prices.csv")
    (reproduced / "my_classes.csv").write_text("ticker,asset_class\nSP500,equity_index\nAAPL,equity\n"
                                                "UST_7_10Y,bond\nBTC,crypto\nMTUM,equity\n")
    result = run([DVC, "exp", "run", "-S", "multi_asset.source=csv", "-S", "multi_asset.path=my_prices.csv",
                  "-S", "multi_asset.asset_classes=my_classes.csv", "-S", "multi_asset.train_start=2013-06-03"],
                 reproduced, timeout=1800)
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
    assert {"train_multi_asset", "results"} <= ran and not ran & {"data", "train_cio"}, ran
    report = json.loads((reproduced / "reports/multi_asset_training.json").read_text())
    assert report["data"]["instruments"] == ["SP500", "AAPL", "UST_7_10Y", "BTC", "MTUM", "CASH"]
    returns = pd.read_parquet(reproduced / "outputs/multi_asset/test_returns.parquet")
    assert str(returns.index[0].date()) == "2019-01-02" and returns.notna().all().all()
