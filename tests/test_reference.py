"""The shipped reference runs (data/reference): present, small, real, and imported once."""

from __future__ import annotations

import pytest

from workbench.reference import REFERENCE_DIR, SPECS, ensure_reference_runs, reference_files


def test_files_are_shipped_and_small():
    files = reference_files()
    assert {f.stem for f in files} == set(SPECS), f"missing in {REFERENCE_DIR}; run python -m workbench.reference --regenerate"
    assert sum(f.stat().st_size for f in files) < 5_000_000
    assert (REFERENCE_DIR / "README.md").read_text().count("python -m workbench.reference --regenerate") >= 1


def test_ensure_reference_runs_imports_once(store):
    n = ensure_reference_runs(store)
    runs = store.runs()
    assert n == len(runs) > 0
    assert ensure_reference_runs(store) == 0            # idempotent
    assert set(runs["status"]) == {"finished"}
    assert set(runs["sweep"]) == {s["name"] for s in SPECS.values()}
    # real training curves: the loss falls, and the grokking sweep reaches perfect train accuracy
    for rid in runs["id"]:
        m = store.metrics(rid, "train_loss").sort_values("step")
        assert len(m) >= 10 and m["value"].iloc[-1] < 0.7 * m["value"].iloc[0]
    grok = runs[runs["sweep"] == SPECS["grokking"]["name"]]
    assert len(grok) == 4
    acc = store.metrics(grok["id"].tolist(), "train_acc").groupby("run")["value"].last()
    assert (acc > 0.99).all()
    # the schedule runs differ in their LR curves as their schedules say
    lm = runs[runs["sweep"] == SPECS["lm_schedules"]["name"]]
    lr = store.metrics(lm["id"].tolist(), "lr", wide=False)
    assert lr.groupby("run")["value"].max().gt(0).all()
    assert lr.groupby("run")["value"].apply(tuple).nunique() == len(lm)


@pytest.mark.parametrize("key", sorted(SPECS))
def test_reference_specs_are_valid_sweeps(key):
    from workbench.sweeps.spec import SweepSpec

    s = SweepSpec.from_dict(SPECS[key]).validate()
    assert s.n_members() == len(s.members())
