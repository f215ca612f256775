"""Gadre et al. 2024 on its own testbed (../shared/data/gadre-overtraining, skipped without it).

The authors' notebook (``scaling_explorer.ipynb`` in mlfoundations/scaling, reported in that folder's
SOURCE.md) fits L(N, M) on five small RedPajama runs (the four small models at M = 20 and the 11M model
at M = 320, C4-eval loss), fits Err(L) on those plus the 1.4B model at M = 20 (mean top-1 error over the
17-task subset), and then predicts two runs it never saw: the 1.4B model at M = 640 and the 6.9B model at
M = 20. Its printed relative errors are the reference values below; the error prediction goes through the
*predicted* loss, as in the paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.fit import fit

# the 17-task subset of mlfoundations/scaling (``scaling/constants.py::SUBSET``)
SUBSET = ("bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
          "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
          "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa", "squad",
          "piqa")
SMALL = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
# (model, Chinchilla multiplier) -> (relative loss error %, relative top-1 error %) printed by the notebook
PUBLISHED = {("open_lm_1b", 32.0): (0.7103, 3.6365), ("open_lm_7b", 1.0): (0.7320, 0.0464)}


def _testbed(root: Path) -> pd.DataFrame:
    df = pd.read_csv(root / "gadre-overtraining" / "models_flat.csv")
    df = df[df["dataset"] == "rpj"].copy()

    def subset_error(name: str) -> float:
        path = root / "gadre-overtraining" / "evals" / f"evaluation_{name}_heavy.json"
        acc = json.loads(path.read_text())["eval_metrics"]["icl"]
        return float(np.mean([1.0 - acc[t] for t in SUBSET]))

    df["err17"] = [subset_error(n) for n in df["name"]]
    df["N"] = df["N_params"].astype(float)
    df["M"] = df["tokens_per_param_M"].astype(float)
    df["C"] = 6.0 * df["N"] * df["N"] * df["M"]   # C = 6ND with D = M·N
    return df


def _is_fit_run(df: pd.DataFrame) -> pd.Series:
    """The five runs the loss law is fitted on: the small models at M = 20, the 11M model at M = 320."""
    return ((df["model"].isin(SMALL) & (df["chinchilla_multiplier"] == 1.0))
            | ((df["model"] == SMALL[0]) & (df["chinchilla_multiplier"] == 16.0)))


def _row(df: pd.DataFrame, model: str, mult: float) -> pd.Series:
    rows = df[(df["model"] == model) & (df["chinchilla_multiplier"] == mult)]
    assert len(rows) == 1, (model, mult)
    return rows.iloc[0]


@pytest.mark.shared_data
def test_gadre_reproduces_the_authors_held_out_errors(shared_data):
    df = _testbed(shared_data)
    train = df[_is_fit_run(df)]
    assert len(train) == 5
    loss_law = fit("gadre", {"C": train["C"].to_numpy(), "M": train["M"].to_numpy(),
                             "L": train["loss_c4_val"].to_numpy()})
    err_train = pd.concat([train, df[(df["model"] == "open_lm_1b") & (df["chinchilla_multiplier"] == 1.0)]])
    assert len(err_train) == 6
    err_law = fit("gadre_downstream", {"L": err_train["loss_c4_val"].to_numpy(),
                                       "Err": err_train["err17"].to_numpy()})
    p = loss_law.params
    assert 0 < p["eta"] < 0.5 and p["E"] > 0   # a decreasing power law in compute with a positive floor
    for (model, mult), (loss_pct, err_pct) in PUBLISHED.items():
        row = _row(df, model, mult)
        loss_hat = float(loss_law.predict({"C": np.array([row["C"]]), "M": np.array([row["M"]])})[0])
        err_hat = float(err_law.predict({"L": np.array([loss_hat])})[0])
        got_loss = abs(loss_hat - row["loss_c4_val"]) / row["loss_c4_val"] * 100
        got_err = abs(err_hat - row["err17"]) / row["err17"] * 100
        assert got_loss == pytest.approx(loss_pct, rel=1e-3), (model, got_loss)
        assert got_err == pytest.approx(err_pct, rel=1e-2), (model, got_err)


@pytest.mark.shared_data
def test_gadre_loss_law_extrapolates_over_the_whole_testbed(shared_data):
    """The same five-point fit predicts every RedPajama run it did not see (M from 5 to 640, 11M to 6.9B
    parameters) to within a few percent once M >= 20; measured: median 0.7 %, worst 2.3 % over the 22
    held-out runs at M >= 20. At M = 5 and 10 the law extrapolates below every fitted M (the
    paper is about over-training, M >= 20) and misses by up to 15 %, so those runs are left out."""
    df = _testbed(shared_data)
    is_train = _is_fit_run(df)
    train, test = df[is_train], df[~is_train]
    law = fit("gadre", {"C": train["C"].to_numpy(), "M": train["M"].to_numpy(),
                        "L": train["loss_c4_val"].to_numpy()})
    pred = law.predict({"C": test["C"].to_numpy(), "M": test["M"].to_numpy()})
    rel = np.abs(pred - test["loss_c4_val"].to_numpy()) / test["loss_c4_val"].to_numpy()
    assert len(test) == 30
    over = test["chinchilla_multiplier"].to_numpy() >= 1.0
    assert over.sum() == 22
    assert np.median(rel[over]) < 0.01 and rel[over].max() < 0.03, np.sort(rel[over])
