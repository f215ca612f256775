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
    grok = runs[runs["sweep"] == SPECS["grokking"]["name"]].set_index("id")
    assert len(grok) == 2
    acc = store.metrics(grok.index.tolist(), "train_acc").groupby("run")["value"].last()
    assert (acc > 0.99).all()  # both memorise the training pairs
    # grokking: with weight decay the test accuracy climbs to >= 95 %; the weight-decay-0 control stays near chance
    test = store.metrics(grok.index.tolist(), "test_acc").groupby("run")["value"].last()
    wd = {rid: cfg["weight_decay"] for rid, cfg in zip(grok.index, grok["config"])}
    assert sorted(wd.values()) == [0.0, 1.0]
    for rid, w in wd.items():
        assert (test[rid] >= 0.95) if w > 0 else (test[rid] < 0.2), (w, test[rid])
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


def test_reference_sweeps_are_imported_with_their_runs(store):
    """The sweep board and the law fitter list the reference sweeps: their records come with the runs."""
    from workbench.sweeps import sweep_results, sweep_status

    ensure_reference_runs(store)
    assert set(store.sweeps()["id"]) == {s["name"] for s in SPECS.values()}
    for key, spec in SPECS.items():
        st = sweep_status(spec["name"], store)
        assert st["members"] == len(store.runs(sweep=spec["name"])) and st["pending"] == 0, (key, st)
        assert sweep_results(spec["name"], store)["status"].eq("finished").all()
    ensure_reference_runs(store)  # idempotent for the sweeps too
    assert len(store.sweeps()) == len(SPECS)


def test_grokking_reference_uses_the_cpu_preset():
    """The reference grokking sweep is `workbench run grokking`'s default settings (kept as a literal there so
    that importing workbench.reference does not import torch)."""
    from workbench.train import GROKKING_PRESETS

    base = SPECS["grokking"]["base"]
    for k, v in GROKKING_PRESETS["cpu"].items():
        if k not in ("steps", "stop_at_test_acc", "weight_decay"):  # the sweep's own length; wd is its axis
            assert base[k] == v, k
    assert GROKKING_PRESETS["cpu"]["weight_decay"] in SPECS["grokking"]["axes"]["weight_decay"]
