"""The GPU claims, measured in one command (issue 19): six parts in order, each with its own time cap,
at most about 8.5 minutes on one H100 / H200; ``--device cpu --smoke`` runs the same code at tiny sizes in
about a minute on 2 CPU cores (tests/test_gpu_suite.py runs it in CI).

1. batched_bench: Nanda et al. 2023's transformer (p = 113, frac 0.3, full batch) at N in {1, 8, 64,
   256} batched vs N sequential bare PyTorch runs, our loop's overhead at N = 1 (live metrics on),
   achieved TFLOP/s and the fraction of the chip's dense bf16 peak; fp32 + TF32, bf16 autocast and
   torch.compile as columns (:mod:`bench.batched_bench`).
2. Host syncs per step: our loop (N = 1 and batched, live metrics on) under
   ``torch.cuda.set_sync_debug_mode("warn")``, every synchronising call attributed to the workbench
   function it came from, counted over two run lengths so set-up and final metrics cancel. ("error"
   mode would stop the run at the loop's one designed device-to-host copy, the batched metrics flush
   every ``sync_every`` log points or 0.25 s; the table lists it separately.) CUDA only.
3. Nanda's setting (wd 1, AdamW lr 1e-3, betas 0.9 / 0.98) for 64 seeds as one batch until every
   member's test accuracy >= 0.99: wall time, each member's grokking step (first eval >= 0.99), against
   one run alone and the paper's ~10 000-epoch scale.
4. Prieto et al. 2025's StableMax without weight decay (their MLP setting, bench/grokking_repro.py b),
   batched, next to its softmax-CE control stack run for as many steps.
5. sweep_bench: a 64-member schedule sweep, batched executor vs local executor (worker processes),
   and the largest difference of their final losses (goal: <= 1e-4).
6. The live path: a batched run streaming into a run store file while a reader process tails it
   (bench/store_bench.py's reader): rows/s and the reader's lag; our step time with the store writer
   vs without (goal: <= 5 % slower).

Every ratio comes from >= 5 alternating measurements of each side (median and min-max printed). The
Markdown goes to stdout, to ``$OUT/gpu_suite.md`` (or ``--out``) and, for a full-size run, to
docs/benchmarks/gpu.md. Needs torch, numpy, pandas, pyarrow, pyyaml, scipy and tqdm only (no Panel, no
optuna: tests/test_gpu_suite.py runs the smoke with those blocked).

    PYTHONUNBUFFERED=1 python bench/gpu_suite.py --out $OUT        # on the GPU
    python bench/gpu_suite.py --device cpu --smoke                # CPU smoke (CI)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench import batched_bench as BB  # noqa: E402
from bench.common import (  # noqa: E402
    BareLoop,
    Capped,
    Ratio,
    interleave,
    md_table,
    nanda_config,
    spread,
    step_time_by_difference,
    time_cap,
    timed,
)
from bench.grokking_repro import PRIETO, first_step, max_value  # noqa: E402
from bench.store_bench import reader as store_reader  # noqa: E402
from bench.sweep_bench import compare_results, schedule_spec  # noqa: E402
from workbench.device import describe, pick_device  # noqa: E402
from workbench.store import RunStore  # noqa: E402
from workbench.train import TrainConfig, train, train_batched  # noqa: E402

PAPER_GROK_EPOCHS = 10_000      # Nanda et al. 2023: test accuracy near 100 % after about 10k epochs (full batch)

FLUSH_FUNCTIONS = ("sync", "flush")      # the loop's designed metrics flush (one device -> host copy)

# Seconds per part, re-budgeted after the first H200 run (2026-12-01, docs/benchmarks/gpu.md): there fp32 reached
# N = 64 in 95 s (31 ms a step at N = 64), part 2 (20 s) and part 6 (40 s) stopped before their batched rows.
CAPS = {"1 fp32": 130, "1 bf16": 40, "1 compile": 40, "2": 45, "3 batch": 60, "3 single": 20, "4 stablemax": 25,
        "4 control": 12, "5": 55, "6": 90}


@dataclass
class Sizes:
    ns: list[int]
    steps: dict[int, int]           # our loop's run length per N (difference method: S and 2S)
    bare_steps: int
    reps: int
    sync_steps: int
    sync_n: int
    nanda_seeds: int
    nanda_budget: int
    prieto_seeds: int
    prieto_budget: int
    prieto_task: dict
    prieto_hidden: list[int]
    sweep: tuple[int, int, int, int, int, int]     # schedules, lrs, seeds, steps, p, hidden
    sweep_reps: int
    live_n: int
    live_steps: int
    reader_steps: int


FULL = Sizes(ns=[1, 8, 64, 256], steps={1: 200, 8: 100, 64: 40, 256: 20}, bare_steps=50, reps=5, sync_steps=100,
             sync_n=64, nanda_seeds=64, nanda_budget=30_000, prieto_seeds=8, prieto_budget=80_000,
             prieto_task={"p": 113, "frac": 0.4}, prieto_hidden=[200, 200], sweep=(4, 4, 4, 200, 23, 128),
             sweep_reps=5, live_n=64, live_steps=30, reader_steps=400)
SMOKE = Sizes(ns=[1, 4], steps={1: 8, 4: 8}, bare_steps=10, reps=5, sync_steps=20, sync_n=4, nanda_seeds=4,
              nanda_budget=150, prieto_seeds=2, prieto_budget=100, prieto_task={"p": 23, "frac": 0.4},
              prieto_hidden=[64, 64], sweep=(2, 2, 2, 20, 11, 32), sweep_reps=1, live_n=4, live_steps=5,
              reader_steps=40)


@dataclass
class Section:
    title: str
    header: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "not run"

    def markdown(self) -> str:
        out = [f"## {self.title}", "", f"_{self.status}_", ""]
        if self.header and self.rows:
            out += [md_table(self.header, self.rows), ""]
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out).rstrip() + "\n"


class Suite:
    def __init__(self, device: str, smoke: bool, workdir: Path) -> None:
        self.dev = pick_device(device)
        self.cuda = self.dev.type == "cuda"
        self.smoke = smoke
        self.size = SMOKE if smoke else FULL
        self.dir = workdir
        self.sections: list[Section] = []
        self.goals: list[list[str]] = []
        self.r: dict = {}                   # results the goals read
        self.t0 = time.perf_counter()

    # ------------------------------------------------------------------ plumbing
    def nanda(self, **kw):
        return nanda_config(self.smoke, device=str(self.dev), tf32=self.cuda, **kw)

    def cap(self, key: str) -> float:
        """A part's time cap; three times longer at smoke sizes (a loaded CI machine is not the measurement)."""
        return CAPS[key] * (3 if self.smoke else 1)

    def store(self, name: str) -> RunStore:
        return RunStore(self.dir / f"{name}.db")

    def part(self, title: str, fn: Callable[[Section], None]) -> Section:
        sec = Section(title)
        t = time.perf_counter()
        try:
            fn(sec)
            sec.status = f"done in {time.perf_counter() - t:.0f} s"
        except Capped as e:
            sec.status = f"{e} (partial results)"
        except Exception as e:  # noqa: BLE001 - one part's failure must not lose the others
            traceback.print_exc()
            sec.status = f"failed after {time.perf_counter() - t:.0f} s: {type(e).__name__}: {e}"
        self.sections.append(sec)
        print(sec.markdown(), flush=True)
        if self.cuda:                 # hand the cached blocks back: the next part (or its workers) needs them
            gc.collect()
            torch.cuda.empty_cache()
        return sec

    def goal(self, goal: str, measured: str, met: bool | None) -> None:
        """A goal counts only at the size the issue names: at smoke sizes the verdict is n/a."""
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        self.goals.append([goal, measured, "n/a (smoke sizes)" if self.smoke else verdict])

    # ------------------------------------------------------------------ 1. batched_bench
    def batched(self, sec: Section) -> None:
        z = self.size
        sec.header = ["N", "measure", *[BB.MODE_LABELS[m] for m in BB.MODES]]
        cfg = self.nanda()
        name = describe(self.dev)
        peak = BB.peak_bf16_tflops(name) if self.cuda else None
        res: dict[str, dict[int, dict[str, str]]] = {m: {} for m in BB.MODES}
        status: dict[str, str] = {}
        if self.cuda:
            _raise_recompile_limit()
        store = self.store("batched")
        for mode in BB.MODES:
            if not self.cuda and mode != "fp32":
                status[mode] = "n/a (no CUDA)"
                continue
            if self.cuda:                 # what an earlier mode left cached (or an out-of-memory N) is handed back
                gc.collect()
                torch.cuda.empty_cache()
            try:
                with time_cap(self.cap(f"1 {mode}")):
                    bare = BareLoop(cfg, mode)
                    flops = bare.flops_per_step()
                    self.r.setdefault("flops", flops)
                    for n in z.ns:
                        m = BB.measure(cfg, mode, n, steps=z.steps[n], bare_steps=z.bare_steps, reps=z.reps,
                                       store=store, bare=bare)
                        res[mode][n] = BB.cells(n, m, flops, peak)
                        self.r[("ms", mode, n)] = statistics.median(m["ours"]) * 1e3
                        self.r[("speedup", mode, n)] = Ratio.of(m["bare"], m["ours"], scale=n)
                        self.r[("tflops", mode, n)] = flops * n / statistics.median(m["ours"]) / 1e12
                        if n == 1:
                            self.r[("overhead", mode)] = Ratio.of(m["ours"], m["bare"])
                status[mode] = "not run"
            except Capped as e:
                status[mode] = f"not run ({e})"
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                status[mode] = f"failed: {type(e).__name__}: {str(e)[:120]}"
        store.close()

        def row(n: int, label: str, key: str) -> list[str]:
            return [n, label, *[res[m].get(n, {}).get(key, status.get(m, "")) for m in BB.MODES]]

        for n in z.ns:
            if n == 1:
                sec.rows.append(row(1, "our loop / bare loop (overhead, live metrics on)", "overhead"))
                sec.rows.append(row(1, "bare loop ms/step", "bare ms/step"))
            sec.rows.append(row(n, "our loop ms/step" if n == 1 else "batched ms/step", "ours ms/step"))
            sec.rows.append(row(n, f"speed-up vs {n} sequential bare run{'s' if n > 1 else ''}", "speed-up"))
            sec.rows.append(row(n, "achieved TFLOP/s (% of bf16 dense peak)", "TFLOP/s"))
        flops = self.r.get("flops")
        sec.notes += [
            f"Model: Nanda transformer {cfg.task_params} {cfg.model_params or '(full size: d_model 128, 4 heads, d_mlp 512)'}"
            f"; full batch; AdamW; our loop logs every {cfg.log_every} steps and evaluates every {cfg.eval_every} "
            "into a run store file.",
            "Cells: median (min-max) of the interleaved measurements; speed-up = N x bare step / batched step. "
            "Our loop's step time is (t(2S) - t(S)) / S over two whole runs, so set-up cancels; where set-up noise "
            "exceeds the extra steps' time it can come out near or below 0, which the min-max shows.",
            f"FLOPs per member-step (forward + backward, torch.utils.flop_counter): {flops:.3g}" if flops else
            "FLOPs: not measured",
            f"bf16 dense peak of '{name}': {peak} TFLOP/s ({BB.PEAK_SOURCE})" if peak else
            f"bf16 dense peak of '{name}': not in the table, no fraction printed",
        ]

    # ------------------------------------------------------------------ 2. host syncs
    def syncs(self, sec: Section) -> None:
        z = self.size
        sec.header = ["run", "site", f"syncs in {z.sync_steps} steps", f"in {2 * z.sync_steps} steps",
                      "per extra step", "kind"]
        if not self.cuda:
            sec.rows.append(["single and batched", "-", "n/a (no CUDA)", "n/a", "n/a", "-"])
            self.r["syncs"] = None
            return
        cfg = self.nanda(eval_every=100, log_every=10)
        store = self.store("syncs")
        worst = 0.0
        with time_cap(self.cap("2")):
            control = count_syncs(deliberate_sync)      # the counter must see a sync we know of
            sec.rows.append(["control: one .item()", ", ".join(control) or "(none)", sum(control.values()), "-", "-",
                             "must be >= 1"])
            if sum(control.values()) < 1:
                raise RuntimeError(f"the sync counter saw {dict(control)} for one deliberate .item(); it cannot "
                                   "count this torch's syncs")
            for label, n in (("single (N=1)", 1), (f"batched (N={z.sync_n})", z.sync_n)):
                run = BB.ours_run(cfg, n, store)
                run(2)
                a, b = count_syncs(run, z.sync_steps), count_syncs(run, 2 * z.sync_steps)
                for site in sorted(set(a) | set(b)):
                    per = (b[site] - a[site]) / z.sync_steps
                    flush = site.rsplit(":", 1)[-1].strip("_") in FLUSH_FUNCTIONS
                    if not flush:
                        worst = max(worst, per)
                    sec.rows.append([label, site, a[site], b[site], f"{per:.3g}",
                                     "designed metrics flush" if flush else "in the step"])
                if not a and not b:
                    sec.rows.append([label, "(none)", 0, 0, "0", "-"])
        store.close()
        self.r["syncs"] = worst
        sec.notes.append("Counted under torch.cuda.set_sync_debug_mode('warn'); a site is the innermost workbench "
                         "function on the Python stack. 'per extra step' = (count at 2S - count at S) / S.")

    def capped_run(self, store: RunStore, cfgs: list, cap: float) -> tuple[list[str], float, str]:
        """Train ``cfgs`` (one run, or one batch) under a time cap; -> the new run ids, wall s, a note
        saying when the cap stopped it (what it logged stays in the store)."""
        before, t, note = set(store.runs()["id"]), time.perf_counter(), ""
        try:
            with time_cap(cap):
                train_batched(cfgs, store) if len(cfgs) > 1 else train(cfgs[0], store)
        except Capped as e:
            note = f" ({e})"
        return [r for r in store.runs()["id"] if r not in before], time.perf_counter() - t, note

    # ------------------------------------------------------------------ 3. Nanda 64 seeds
    def nanda_seeds(self, sec: Section) -> None:
        z = self.size
        sec.header = ["run", "wall s", "steps", "grokked (test acc >= 0.99)", "grokking step median (min-max)"]
        cfg = self.nanda(steps=z.nanda_budget, log_every=100, eval_every=50, stop_at_test_acc=0.99)
        store = self.store("nanda")
        for label, n, cap in ((f"{z.nanda_seeds} seeds, one batch", z.nanda_seeds, self.cap("3 batch")),
                              ("one run alone (seed 0)", 1, self.cap("3 single"))):
            ids, wall, note = self.capped_run(store, [cfg.replace(seed=i) for i in range(n)], cap)
            steps = [first_step(store, r, "test_acc", 0.99) for r in ids]
            done = [s for s in steps if s is not None]
            last = _last_step(store, ids)
            sec.rows.append([label + note, f"{wall:.1f}", last, f"{len(done)}/{len(ids)}",
                             f"{statistics.median(done):.0f} ({min(done)}-{max(done)})" if done else "none"])
            self.r[("nanda", n)] = (wall, len(done), len(ids), done)
        store.close()
        wb, db, nb, sb = self.r[("nanda", z.nanda_seeds)]
        w1, d1, _, _ = self.r[("nanda", 1)]
        if d1 and db == nb:
            sec.notes.append(f"{nb} seeds in one batch took {wb:.1f} s; {nb} runs one after another at the single "
                             f"run's {w1:.1f} s would take {nb * w1:.0f} s ({nb * w1 / wb:.1f}x longer).")
        if sb:
            sec.notes.append(f"Median grokking step {statistics.median(sb):.0f} = "
                             f"{statistics.median(sb) / PAPER_GROK_EPOCHS:.2f} x the paper's ~{PAPER_GROK_EPOCHS:,} "
                             "epochs (full batch: one step = one epoch); resolution: the eval interval, "
                             f"{cfg.eval_every} steps.")
        sec.notes.append(f"Setting: {cfg.task_params}, AdamW lr {cfg.lr}, wd {cfg.weight_decay}, betas "
                         f"{cfg.optimizer_params['betas']}, {'TF32' if cfg.tf32 else 'fp32'}; stops when every member "
                         f"has test acc >= 0.99, budget {z.nanda_budget} steps.")

    # ------------------------------------------------------------------ 4. StableMax
    def stablemax(self, sec: Section) -> None:
        z = self.size
        sec.header = ["stack", "steps", "members >= 0.9 test acc", "first step >= 0.9 median", "max test acc median",
                      "max SC fraction median", "wall s"]
        base = TrainConfig(**{**PRIETO, "task_params": z.prieto_task, "device": str(self.dev),
                              "model_params": {"hidden": z.prieto_hidden, "bias": False}, "steps": z.prieto_budget})
        store = self.store("prieto")
        steps_done = z.prieto_budget
        for label, cfg, cap in (("StableMax CE, wd 0", base.replace(loss="stablemax", stop_at_test_acc=0.95),
                                 self.cap("4 stablemax")), ("softmax CE, wd 0 (control)", base, self.cap("4 control"))):
            if cfg.loss == "ce":                    # the control runs as far as the StableMax stack got
                cfg = cfg.replace(steps=max(steps_done, 1))
            ids, wall, note = self.capped_run(store, [cfg.replace(seed=s) for s in range(z.prieto_seeds)], cap)
            last = _last_step(store, ids)
            if cfg.loss == "stablemax":
                steps_done = last
            first = [first_step(store, r, "test_acc", 0.9) for r in ids]
            hit = [f for f in first if f is not None]
            sc = [max_value(store, r, "sc_fraction") for r in ids]
            sec.rows.append([label + note, last, f"{len(hit)}/{len(ids)}",
                             f"{statistics.median(hit):.0f}" if hit else "never",
                             f"{statistics.median(max_value(store, r, 'test_acc') for r in ids):.4f}",
                             f"{statistics.median(sc):.3f}" if cfg.loss == "ce" else "-", f"{wall:.1f}"])
        store.close()
        sec.notes.append(f"Prieto et al. 2025 setting: {z.prieto_task}, MLP {z.prieto_hidden} no bias, full batch, "
                         "AdamW lr 1e-2 betas (0.9, 0.99) eps 1e-25, wd 0, fp32; StableMax stops when every member "
                         f"has test acc >= 0.95 (budget {z.prieto_budget} steps; the paper trains 80 000 epochs); the "
                         "softmax control runs as many steps.")

    # ------------------------------------------------------------------ 5. sweep_bench
    def sweep(self, sec: Section) -> None:
        from workbench.sweeps import run_sweep

        z = self.size
        n_s, n_lr, n_seed, steps, p, hidden = z.sweep
        spec = schedule_spec(n_s, n_lr, n_seed, steps, str(self.dev), p, hidden)
        n = n_s * n_lr * n_seed
        workers = 1 if self.smoke else min(16, os.cpu_count() or 1)
        store = self.store("sweep")
        sids: dict[str, list[str]] = {"batched": [], "local": []}

        def sweep_time(executor: str) -> float:
            opts = {"max_group": n} if executor == "batched" else {"workers": workers}
            return timed(lambda: sids[executor].append(run_sweep(spec, executor, store, progress=False, **opts)))

        sec.header = ["measure", "value"]
        m: dict[str, list[float]] = {}
        try:
            with time_cap(self.cap("5")):
                interleave({"batched": lambda: sweep_time("batched"), "local": lambda: sweep_time("local")}, z.sweep_reps, m)
        finally:                                   # a capped part still reports its complete pairs
            k = min(len(m.get("batched", [])), len(m.get("local", [])))
            if k:
                self._sweep_rows(sec, store, sids, {s: v[:k] for s, v in m.items()}, n, workers)
            store.close()

    def _sweep_rows(self, sec: Section, store: RunStore, sids: dict[str, list[str]], m: dict[str, list[float]],
                    n: int, workers: int) -> None:
        n_s, n_lr, n_seed, steps, p, hidden = self.size.sweep
        diff = max(compare_results(store, a, b) for a, b in zip(sids["batched"], sids["local"]))
        ratio = Ratio.of(m["local"], m["batched"])
        self.r["sweep"] = (ratio, diff)
        sec.rows += [["members", f"{n} ({n_s} schedules x {n_lr} peak LRs x {n_seed} seeds), {steps} steps, "
                                 f"MLP [{hidden}] on a + b mod {p}"],
                     ["batched executor wall s (one group)", spread(m["batched"])],
                     [f"local executor wall s ({workers} worker processes)", spread(m["local"])],
                     ["local / batched", str(ratio)],
                     ["largest |difference| of final train / test loss, same member", f"{diff:.2e}"]]

    # ------------------------------------------------------------------ 6. live path
    def live(self, sec: Section) -> None:
        z = self.size
        cfg = self.nanda()
        sec.header = ["measure", "value"]
        store = self.store("live")
        with time_cap(self.cap("6")):
            with_w, without = BB.ours_run(cfg, z.live_n, store), BB.ours_run(cfg, z.live_n, None)
            with_w(2)
            without(2)
            m = interleave({"with": lambda: step_time_by_difference(with_w, z.live_steps, self.dev),
                            "without": lambda: step_time_by_difference(without, z.live_steps, self.dev)}, z.reps)
            cost = Ratio.of(m["with"], m["without"])
            self.r["writer"] = cost
            sec.rows += [[f"step ms, N={z.live_n}, store writer on", spread(m["with"], 1e3)],
                         ["step ms, no store", spread(m["without"], 1e3)],
                         ["with writer / without", str(cost)]]
            rows, wall, lags = self._tail(cfg)
            sec.rows += [[f"rows/s streamed ({z.reader_steps} steps, reader tailing)", f"{rows / wall:,.0f}"],
                         ["reader lag s p50 / p95 / max", " / ".join(f"{np.percentile(lags, q):.3f}" for q in (50, 95))
                          + f" / {max(lags):.3f}" if lags else "no rows seen"]]
        store.close()
        sec.notes.append(f"Our loop logs every {cfg.log_every} steps (one host copy per flush) and writes the rows to "
                         "the store file at each flush (at least every 0.25 s); lag = the reader's clock when a row "
                         "arrives minus the row's log time (batching + commit + 0.05 s poll).")

    def _tail(self, cfg) -> tuple[int, float, list[float]]:
        ctx = mp.get_context("spawn")
        path = str(self.dir / "tail.db")
        RunStore(path).close()
        q, ready, done = ctx.Queue(), ctx.Barrier(2), ctx.Event()
        proc = ctx.Process(target=store_reader, args=(path, 0.05, q, ready, done), daemon=True)
        proc.start()
        try:
            ready.wait(timeout=60)
            store = RunStore(path)
            wall = timed(lambda: BB.ours_run(cfg, self.size.live_n, store)(self.size.reader_steps), self.dev)
            store.close()
            done.set()
            _, seen, lags = q.get(timeout=30)
        finally:
            done.set()
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        return int(seen), wall, [float(x) for x in lags]

    # ------------------------------------------------------------------ goals + document
    def judge(self) -> None:
        z, r = self.size, self.r
        big = max(n for n in z.ns if n <= 64)
        sp = {m: r[("speedup", m, big)] for m in BB.MODES if ("speedup", m, big) in r}
        self.goal(f"N={big} batched >= 32x the throughput of {big} sequential bare runs",
                  "; ".join(f"{BB.MODE_LABELS[m]} {v}" for m, v in sp.items()) or "not measured",
                  any(v.median >= 32 for v in sp.values()) if sp else None)
        ms = {m: r[("ms", m, big)] for m in BB.MODES if ("ms", m, big) in r}
        self.goal(f"stretch: N={big} step <= 4 ms", "; ".join(f"{BB.MODE_LABELS[m]} {v:.3g} ms" for m, v in ms.items())
                  or "not measured", min(ms.values()) <= 4 if ms and self.cuda else None)
        peak = BB.peak_bf16_tflops(describe(self.dev)) if self.cuda else None
        tf = r.get(("tflops", "bf16", big))
        self.goal(f"stretch: N={big} >= 20 % of bf16 dense peak",
                  f"{tf:.3g} TFLOP/s = {100 * tf / peak:.2g} %" if tf and peak else "not measured",
                  tf / peak >= 0.2 if tf and peak else None)
        ov = r.get(("overhead", "fp32"))
        self.goal("our loop with live metrics <= 1.05x a bare loop at N=1 (fp32)", str(ov) if ov else "not measured",
                  ov.median <= 1.05 if ov else None)
        s = r.get("syncs")
        self.goal("zero host syncs per step (outside the designed metrics flush)",
                  f"{s:.3g} per step" if s is not None else ("not measured" if self.cuda else "n/a (no CUDA)"),
                  None if s is None else s == 0)
        nd = r.get(("nanda", z.nanda_seeds))
        self.goal(f"all {z.nanda_seeds} Nanda seeds grokked in <= 60 s",
                  f"{nd[1]}/{nd[2]} in {nd[0]:.1f} s" if nd else "not measured",
                  (nd[1] == nd[2] and nd[0] <= 60) if nd else None)
        sw = r.get("sweep")
        self.goal("batched sweep = local sweep to 1e-4 (final losses)", f"{sw[1]:.2e} (local / batched wall {sw[0]})"
                  if sw else "not measured", sw[1] <= 1e-4 if sw else None)
        w = r.get("writer")
        self.goal("store writer costs <= 5 % of the step", str(w) if w else "not measured",
                  w.median <= 1.05 if w else None)

    def document(self, argv: list[str]) -> str:
        head = ["# GPU suite results (bench/gpu_suite.py)", "",
                f"- device: {describe(self.dev)}" + (f", CUDA {torch.version.cuda}" if self.cuda else ""),
                f"- torch {torch.__version__}, Python {platform.python_version()}",
                f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; commit {_commit()}",
                f"- command: `python bench/gpu_suite.py {' '.join(argv)}`"
                + (" (CPU smoke: tiny sizes, not a measurement of the claims)" if self.smoke else ""),
                f"- total wall time: {time.perf_counter() - self.t0:.0f} s", "",
                "## Goals", "", md_table(["goal", "measured", "verdict"], self.goals), ""]
        return "\n".join(head) + "\n" + "\n".join(s.markdown() for s in self.sections)


# ---------------------------------------------------------------------------------------------- helpers
def _last_step(store: RunStore, ids: list[str]) -> int:
    """The last step at which any of runs ``ids`` logged its test accuracy (0 if none)."""
    return max((int(s) for r in ids for s in store.metrics(r, "test_acc")["step"].tail(1)), default=0)


def _raise_recompile_limit() -> None:
    """Each of our loop's runs builds a new engine, so torch.compile sees new objects and recompiles; keep
    dynamo from falling back to eager after its default 8 recompiles."""
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 512)


def sync_site(stack: list[traceback.FrameSummary]) -> str:
    """Where a synchronising call came from: the innermost frame in the workbench package
    (``module/file.py:function``), else the innermost frame outside torch and the warnings module."""
    for fr in reversed(stack):
        parts = Path(fr.filename).parts
        if "workbench" in parts and "bench" not in parts:
            i = len(parts) - 1 - parts[::-1].index("workbench")
            return f"{'/'.join(parts[i:])}:{fr.name}"
    for fr in reversed(stack):
        if "torch" not in Path(fr.filename).parts and Path(fr.filename).name != "warnings.py":
            return f"{Path(fr.filename).name}:{fr.name}"
    return "?"


def deliberate_sync() -> float:
    """One synchronising call (a device scalar read on the host): the counter's positive control."""
    return torch.ones((), device="cuda").item()


def count_syncs(fn: Callable[..., object], *args: object) -> Counter:
    """Synchronising CUDA calls made by ``fn(*args)``, by :func:`sync_site`, under sync debug mode 'warn'."""
    sites: Counter = Counter()

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if "synchroniz" in str(message):
            sites[sync_site(traceback.extract_stack()[:-1])] += 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("warn")
        try:
            fn(*args)
        finally:
            if torch.cuda.is_available():
                torch.cuda.set_sync_debug_mode("default")
    return sites


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


PARTS = {"1": ("1. batched_bench: N members batched vs N sequential bare runs", "batched"),
         "2": ("2. Host syncs per step (live metrics on)", "syncs"),
         "3": ("3. Nanda et al. 2023 for many seeds in one batch, until all grok", "nanda_seeds"),
         "4": ("4. Prieto et al. 2025: StableMax without weight decay, batched, with its softmax control",
               "stablemax"),
         "5": ("5. sweep_bench: schedule sweep, batched vs local executor", "sweep"),
         "6": ("6. Live path: a batched run streaming into the store while a reader tails it", "live")}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present) | cuda | cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU smoke test, about a minute)")
    ap.add_argument("--parts", default="1,2,3,4,5,6", help="which parts to run, e.g. 1,3")
    ap.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_suite.md (default: $OUT)")
    ap.add_argument("--results", default=None,
                    help="results file (default: docs/benchmarks/gpu.md for a full run, none for --smoke)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 with --smoke)")
    a = ap.parse_args(argv)
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        print(f"gpu_suite: --parts: unknown part {bad[0]!r}; allowed: {', '.join(PARTS)}", file=sys.stderr)
        return 2
    threads = a.threads or (1 if a.smoke else None)
    if threads:
        torch.set_num_threads(threads)
    results = a.results or (None if a.smoke else str(ROOT / "docs" / "benchmarks" / "gpu.md"))
    with tempfile.TemporaryDirectory(prefix="gpu_suite") as d:
        suite = Suite(a.device, a.smoke, Path(d))
        print(f"# gpu_suite on {describe(suite.dev)}, torch {torch.__version__}, "
              f"{'smoke' if a.smoke else 'full'} sizes\n", flush=True)
        for p in parts:
            title, meth = PARTS[p]
            suite.part(title, getattr(suite, meth))
            _write(suite.document(argv), a.out, results)       # after each part: a kill keeps what was measured
        suite.judge()
        doc = suite.document(argv)
    print("## Goals\n\n" + md_table(["goal", "measured", "verdict"], suite.goals), flush=True)
    _write(doc, a.out, results)
    return 0


def _write(doc: str, out: str | None, results: str | None) -> None:
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_suite.md").write_text(doc)
    if results:
        Path(results).parent.mkdir(parents=True, exist_ok=True)
        Path(results).write_text(doc)


if __name__ == "__main__":
    sys.exit(main())
