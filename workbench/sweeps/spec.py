"""Sweep specifications as plain data, and the strategies that turn them into members.

A :class:`SweepSpec` is what a user writes in YAML (or a dict), in the spirit of W&B Sweeps and
Optuna search spaces::

    name: schedules-on-grokking
    strategy: grid                  # grid | random | bayes
    base:                           # fixed TrainConfig fields (workbench.train.TrainConfig)
      task: modular
      task_params: {p: 23, frac: 0.5}
      model: mlp
      steps: 300
    axes:                           # one entry per varied TrainConfig field (dotted paths allowed)
      schedule: [cosine, linear, {name: wsd, decay_fraction: 0.2}]   # registry names or spec dicts
      optimizer: [adamw, sgd]                                     # registry names
      lr: {log_uniform: [1.0e-4, 1.0e-2]}                         # random / bayes only
      weight_decay: {grid: [0.0, 1.0, 3]}                         # linspace -> a list axis
      batch_size: [64, 128]
    linked:                         # derived fields, e.g. "LR scaled with batch size"
      - {param: lr, scale_with: batch_size, ref: 64, power: 0.5}  # lr * (batch_size / 64) ** 0.5
    seeds: [0, 1, 2]
    budget: {trials: 20}            # random / bayes: configurations to try (each run with every seed)
    objective: {metric: test_loss, mode: min}
    target: {metric: test_acc, value: 0.99, mode: max}           # AlgoPerf time-to-target
    pruning: {at_fraction: 0.5, threshold: 0.05}                 # bayes only; or `pruning: true`

Axis forms: a list (``[a, b]`` or ``{values: [...]}``), a grid over a range (``{grid: [lo, hi, n]}``,
``{log_grid: [lo, hi, n]}``, expanded to a list), and for the random / bayes strategies
``{uniform: [lo, hi]}``, ``{log_uniform: [lo, hi]}``, ``{int_uniform: [lo, hi]}``.

Strategies: ``grid`` (the product of list axes times seeds), ``random`` (``budget.trials`` draws with
a seeded ``numpy`` generator; list axes are sampled uniformly) and ``bayes`` (Optuna's TPE sampler,
Bergstra et al. 2011, through ``optuna`` rather than hand-written; see :mod:`workbench.sweeps.runner`).

Pruning (bayes only): each trial is paused at ``at_fraction`` of its steps and stopped for good when the
learning-curve forecast of its objective says P(final value better than the best completed trial) <
``threshold`` (Domhan et al. 2015's predictive termination; :mod:`workbench.sweeps.pruning`). Keys:
``at_fraction`` in (0, 1) (default 0.5), ``threshold`` in (0, 1) (0.05), ``min_points`` >= 4 logged values
before the pause (8), ``families`` (curve families of :mod:`workbench.fit.learning_curves`, default
:data:`workbench.sweeps.pruning.PRUNER_FAMILIES`). ``pruning: true`` takes every default.

Validation happens in :meth:`SweepSpec.validate` *before anything runs*: the shape of every field,
schedule and optimizer names against their registries, the number of members (computed from the axis
lengths, never by listing them: at most :data:`MAX_MEMBERS`), and member configs through
``TrainConfig.from_dict``, which builds every nested spec (schedule with its parameters, optimizer with
its parameters, model, task, device; :mod:`workbench.configcheck`): every member of a grid of at most
:data:`FULL_CHECK` points, else each axis value with the other axes at their first value. Errors are
:class:`SweepSpecError` (a :class:`~workbench.errors.WorkbenchError`) naming the field and the allowed values.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

STRATEGIES = ("grid", "random", "bayes")
RANGE_KINDS = ("uniform", "log_uniform", "int_uniform")
GRID_KINDS = ("grid", "log_grid")
MODES = ("min", "max")
MAX_MEMBERS = 1_000_000   # members of one sweep (configurations x seeds); more is refused before listing any
MAX_AXIS_POINTS = 100_000  # points of one {grid: [lo, hi, n]} / {log_grid: ...} axis
FULL_CHECK = 256          # grids up to this many points have every member config built by validate()
TOP_KEYS = ("name", "strategy", "base", "axes", "linked", "seeds", "budget", "objective", "target",
            "resources", "sampler_seed", "pruning", "workload", "submission")


class SweepSpecError(WorkbenchError):
    """A bad sweep spec: names the field and what is allowed."""


# ---------------------------------------------------------------------------------------- axes
@dataclass
class Axis:
    """One varied config field. ``kind`` is ``list`` or one of :data:`RANGE_KINDS`."""

    name: str
    kind: str = "list"
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None

    @classmethod
    def from_value(cls, name: str, v: Any) -> Axis:
        where = f"axes.{name}"
        if isinstance(v, (list, tuple)):
            vals = list(v)
        elif isinstance(v, Mapping) and len(v) == 1 and "values" in v:
            vals = list(v["values"])
        elif isinstance(v, Mapping) and len(v) == 1 and next(iter(v)) in GRID_KINDS:
            kind, arg = next(iter(v.items()))
            if not (isinstance(arg, (list, tuple)) and len(arg) == 3):
                raise SweepSpecError(f"{where}.{kind}: must be [low, high, n], got {arg!r}")
            lo, hi, n = arg
            _number(f"{where}.{kind}[0]", lo)
            _number(f"{where}.{kind}[1]", hi)
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_AXIS_POINTS:
                raise SweepSpecError(f"{where}.{kind}[2]: the number of points must be an integer in "
                                     f"[1, {MAX_AXIS_POINTS}], got {n!r}")
            if kind == "log_grid":
                if lo <= 0 or hi <= 0:
                    raise SweepSpecError(f"{where}.log_grid: low and high must be > 0, got {lo!r}, {hi!r}")
                vals = np.geomspace(lo, hi, n).tolist()
            else:
                vals = np.linspace(lo, hi, n).tolist()
        elif isinstance(v, Mapping) and len(v) == 1 and next(iter(v)) in RANGE_KINDS:
            kind, arg = next(iter(v.items()))
            if not (isinstance(arg, (list, tuple)) and len(arg) == 2):
                raise SweepSpecError(f"{where}.{kind}: must be [low, high], got {arg!r}")
            lo, hi = arg
            _number(f"{where}.{kind}[0]", lo)
            _number(f"{where}.{kind}[1]", hi)
            if not lo < hi:
                raise SweepSpecError(f"{where}.{kind}: low must be < high, got [{lo}, {hi}]")
            if kind == "log_uniform" and lo <= 0:
                raise SweepSpecError(f"{where}.log_uniform: low must be > 0, got {lo!r}")
            if kind == "int_uniform" and not (float(lo).is_integer() and float(hi).is_integer()):
                raise SweepSpecError(f"{where}.int_uniform: bounds must be integers, got [{lo}, {hi}]")
            return cls(name, kind, None, float(lo), float(hi))
        else:
            raise SweepSpecError(
                f"{where}: must be a list of values, {{values: [...]}}, {{grid|log_grid: [lo, hi, n]}} or "
                f"{{uniform|log_uniform|int_uniform: [lo, hi]}}; got {v!r} (fixed values go in 'base')")
        if not vals:
            raise SweepSpecError(f"{where}: needs at least one value")
        return cls(name, "list", _plain(vals))

    def to_value(self) -> Any:
        if self.kind == "list":
            return list(self.values or [])
        lo, hi = self.low, self.high
        if self.kind == "int_uniform":
            lo, hi = int(lo), int(hi)
        return {self.kind: [lo, hi]}

    def sample(self, rng: np.random.Generator) -> Any:
        """One draw (random strategy)."""
        if self.kind == "list":
            return copy.deepcopy(self.values[int(rng.integers(len(self.values)))])
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.kind == "log_uniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return int(rng.integers(int(self.low), int(self.high) + 1))

    def suggest(self, trial: Any) -> Any:
        """One draw from an Optuna trial (bayes strategy)."""
        if self.kind == "list":
            keys = [_key(v) for v in self.values]
            k = trial.suggest_categorical(self.name, keys)
            return copy.deepcopy(self.values[keys.index(k)])
        if self.kind == "int_uniform":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log_uniform")

    def corners(self) -> list[Any]:
        """Values that bound the axis (for validating a range before sampling)."""
        if self.kind == "list":
            return list(self.values)
        if self.kind == "int_uniform":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


@dataclass
class Linked:
    """A derived field: ``param = param * (scale_with / ref) ** power`` (e.g. LR scaled with batch size:
    ``power`` 1 for SGD's linear rule, 0.5 for Adam's square-root rule; Granziol et al. 2022)."""

    param: str
    scale_with: str
    ref: float
    power: float = 1.0

    @classmethod
    def from_dict(cls, d: Any, i: int) -> Linked:
        where = f"linked[{i}]"
        if not isinstance(d, Mapping):
            raise SweepSpecError(f"{where}: must be a mapping {{param, scale_with, ref, power}}, got {d!r}")
        bad = set(d) - {"param", "scale_with", "ref", "power"}
        if bad:
            raise SweepSpecError(f"{where}: unknown key {sorted(bad)[0]!r}; allowed: param, scale_with, ref, power")
        for k in ("param", "scale_with", "ref"):
            if k not in d:
                raise SweepSpecError(f"{where}.{k}: missing (e.g. {{param: lr, scale_with: batch_size, ref: 64}})")
        _number(f"{where}.ref", d["ref"])
        if d["ref"] <= 0:
            raise SweepSpecError(f"{where}.ref: must be > 0, got {d['ref']!r}")
        _number(f"{where}.power", d.get("power", 1.0))
        return cls(str(d["param"]), str(d["scale_with"]), float(d["ref"]), float(d.get("power", 1.0)))

    def to_dict(self) -> dict:
        return {"param": self.param, "scale_with": self.scale_with, "ref": self.ref, "power": self.power}

    def apply(self, cfg: dict) -> None:
        base = _get(cfg, self.param)
        x = _get(cfg, self.scale_with)
        if not isinstance(base, (int, float)) or not isinstance(x, (int, float)):
            raise SweepSpecError(f"linked: {self.param!r} and {self.scale_with!r} must be numbers in every member, "
                                 f"got {base!r} and {x!r}")
        _set(cfg, self.param, float(base) * (float(x) / self.ref) ** self.power)


# ---------------------------------------------------------------------------------------- members
@dataclass
class Member:
    """One run of a sweep: ``index`` (stable within the sweep), the axis values it was given
    (``params``), its ``seed`` and the full TrainConfig dict."""

    index: int
    params: dict[str, Any]
    seed: int
    config: dict[str, Any]
    trial: int | None = None

    @property
    def key(self) -> str:
        """A short hash of the config: the same member across resumes."""
        return hashlib.sha1(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:10]

    def to_dict(self) -> dict:
        return {"index": self.index, "params": self.params, "seed": self.seed, "config": self.config,
                "trial": self.trial}


# ---------------------------------------------------------------------------------------- the spec
@dataclass
class SweepSpec:
    """A sweep as plain data (see the module docstring for the YAML form)."""

    name: str
    base: dict[str, Any] = field(default_factory=dict)
    axes: list[Axis] = field(default_factory=list)
    linked: list[Linked] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    strategy: str = "grid"
    budget: dict[str, Any] = field(default_factory=dict)
    objective: dict[str, Any] = field(default_factory=lambda: {"metric": "test_loss", "mode": "min"})
    target: dict[str, Any] | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    sampler_seed: int = 0
    pruning: dict[str, Any] | None = None      # normalised by _pruning(): every key present, or None
    workload: str | None = None
    submission: str | None = None

    # ------------------------------------------------------------------ plain data
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepSpec:
        """Parse and validate the shape of a spec dict (names checked by :meth:`validate`)."""
        if not isinstance(d, Mapping):
            raise SweepSpecError(f"spec: must be a mapping, got {type(d).__name__}")
        bad = set(d) - set(TOP_KEYS)
        if bad:
            raise SweepSpecError(f"spec: unknown key {sorted(bad)[0]!r}; allowed: {', '.join(TOP_KEYS)}")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SweepSpecError(f"name: must be a non-empty string, got {name!r}")
        strategy = d.get("strategy", "grid")
        if strategy not in STRATEGIES:
            raise SweepSpecError(f"strategy: must be one of {STRATEGIES}, got {strategy!r}")
        base = d.get("base", {}) or {}
        if not isinstance(base, Mapping):
            raise SweepSpecError(f"base: must be a mapping of TrainConfig fields, got {base!r}")
        axes_raw = d.get("axes", {}) or {}
        if not isinstance(axes_raw, Mapping):
            raise SweepSpecError(f"axes: must be a mapping name -> values, got {type(axes_raw).__name__}")
        axes = [Axis.from_value(str(k), v) for k, v in axes_raw.items()]
        linked_raw = d.get("linked", []) or []
        if not isinstance(linked_raw, (list, tuple)):
            raise SweepSpecError(f"linked: must be a list of {{param, scale_with, ref, power}}, got {linked_raw!r}")
        linked = [Linked.from_dict(x, i) for i, x in enumerate(linked_raw)]
        seeds = d.get("seeds", [0])
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = [seeds]
        if (not isinstance(seeds, (list, tuple)) or not seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
            raise SweepSpecError(f"seeds: must be a non-empty list of integers >= 0, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise SweepSpecError(f"seeds: must be distinct, got {list(seeds)!r}")
        budget = dict(d.get("budget", {}) or {})
        bad = set(budget) - {"trials", "max_members", "parallel"}
        if bad:
            raise SweepSpecError(f"budget: unknown key {sorted(bad)[0]!r}; allowed: trials, max_members, parallel")
        for k in ("trials", "max_members", "parallel"):
            if k in budget and (not isinstance(budget[k], int) or isinstance(budget[k], bool) or budget[k] < 1):
                raise SweepSpecError(f"budget.{k}: must be an integer >= 1, got {budget[k]!r}")
        if strategy in ("random", "bayes") and "trials" not in budget:
            raise SweepSpecError(f"budget.trials: required for strategy {strategy!r} (the number of configurations)")
        objective = dict(d.get("objective", {"metric": "test_loss", "mode": "min"}) or {})
        _check_metric_mode("objective", objective, need_value=False)
        target = d.get("target")
        if target is not None:
            target = dict(target)
            _check_metric_mode("target", target, need_value=True)
        resources = dict(d.get("resources", {}) or {})
        bad = set(resources) - {"cpus_per_trial", "gpus_per_trial", "max_group", "memory_fraction", "workers"}
        if bad:
            raise SweepSpecError(f"resources: unknown key {sorted(bad)[0]!r}; allowed: cpus_per_trial, "
                                 "gpus_per_trial, max_group, memory_fraction, workers")
        for k, lo, hi in (("cpus_per_trial", 0.0, 1e6), ("gpus_per_trial", 0.0, 1e6), ("memory_fraction", 0.0, 1.0)):
            if k in resources:
                _number(f"resources.{k}", resources[k])
                if not lo < resources[k] <= hi:
                    raise SweepSpecError(f"resources.{k}: must be in ({lo:g}, {hi:g}], got {resources[k]!r}")
        for k in ("max_group", "workers"):
            if k in resources and (not isinstance(resources[k], int) or resources[k] < 1):
                raise SweepSpecError(f"resources.{k}: must be an integer >= 1, got {resources[k]!r}")
        sampler_seed = d.get("sampler_seed", 0)
        if not isinstance(sampler_seed, int) or isinstance(sampler_seed, bool):
            raise SweepSpecError(f"sampler_seed: must be an integer, got {sampler_seed!r}")
        pruning = _pruning(d.get("pruning"))
        if pruning is not None and strategy != "bayes":
            raise SweepSpecError(f"pruning: needs strategy 'bayes' (trials proposed and stopped one by one), "
                                 f"got strategy {strategy!r}; set pruning: false")
        names = [a.name for a in axes]
        for lk in linked:
            if lk.param == lk.scale_with:
                raise SweepSpecError(f"linked: param and scale_with must differ, got {lk.param!r} twice")
        if strategy == "grid":
            for a in axes:
                if a.kind != "list":
                    raise SweepSpecError(f"axes.{a.name}: a {a.kind} range needs strategy 'random' or 'bayes'; "
                                         "the grid strategy takes lists or {grid|log_grid: [lo, hi, n]}")
        if "seed" in names:
            raise SweepSpecError("axes.seed: put seeds in the top-level 'seeds' list")
        for k in ("workload", "submission"):
            if d.get(k) is not None and not isinstance(d.get(k), str):
                raise SweepSpecError(f"{k}: must be a config field name (dotted path), got {d.get(k)!r}")
        return cls(name=name.strip(), base=_plain(dict(base)), axes=axes, linked=linked, seeds=list(seeds),
                   strategy=strategy, budget=budget, objective=objective, target=target, resources=resources,
                   sampler_seed=sampler_seed, pruning=pruning, workload=d.get("workload"),
                   submission=d.get("submission"))

    def to_dict(self) -> dict[str, Any]:
        """Plain data; ``SweepSpec.from_dict(s.to_dict())`` gives an equal spec."""
        out: dict[str, Any] = {"name": self.name, "strategy": self.strategy, "base": copy.deepcopy(self.base),
                               "axes": {a.name: a.to_value() for a in self.axes},
                               "seeds": list(self.seeds), "objective": dict(self.objective)}
        if self.linked:
            out["linked"] = [lk.to_dict() for lk in self.linked]
        if self.budget:
            out["budget"] = dict(self.budget)
        if self.target is not None:
            out["target"] = dict(self.target)
        if self.resources:
            out["resources"] = dict(self.resources)
        if self.sampler_seed:
            out["sampler_seed"] = self.sampler_seed
        if self.pruning is not None:
            out["pruning"] = copy.deepcopy(self.pruning)
        for k in ("workload", "submission"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> SweepSpec:
        """From a YAML file path or YAML text."""
        from workbench import yamlio

        p = Path(text_or_path) if not isinstance(text_or_path, Path) else text_or_path
        text = str(text_or_path)
        try:
            if isinstance(text_or_path, Path) or ("\n" not in text and p.suffix in (".yaml", ".yml", ".json")):
                if not p.exists():
                    raise SweepSpecError(f"spec: file {p} does not exist")
                text = p.read_text()
        except OSError as e:
            raise SweepSpecError(f"spec: cannot read {p}: {e}") from None
        try:
            d = yamlio.load(text)
        except yamlio.YAMLError as e:
            raise SweepSpecError(f"spec: not valid YAML ({' '.join(str(e).split())})") from None
        return cls.from_dict(d)

    def to_yaml(self, path: str | Path | None = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SweepSpec) and self.to_dict() == other.to_dict()

    # ------------------------------------------------------------------ members
    def config_for(self, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """The full config dict of one member: base, then axis values, then seed, then linked rules."""
        cfg = copy.deepcopy(self.base)
        for k, v in params.items():
            _set(cfg, k, copy.deepcopy(v))
        if isinstance(cfg.get("schedule"), str):
            cfg["schedule"] = {"name": cfg["schedule"]}
        cfg["seed"] = int(seed)
        for lk in self.linked:
            lk.apply(cfg)
        return cfg

    def grid_points(self) -> list[dict[str, Any]]:
        """Axis combinations of the grid strategy (first axis varies slowest)."""
        if not self.axes:
            return [{}]
        return [dict(zip([a.name for a in self.axes], combo))
                for combo in itertools.product(*[a.values for a in self.axes])]

    def random_points(self) -> list[dict[str, Any]]:
        """``budget.trials`` draws (seeded with ``sampler_seed``)."""
        rng = np.random.default_rng(self.sampler_seed)
        return [{a.name: a.sample(rng) for a in self.axes} for _ in range(int(self.budget["trials"]))]

    def members(self) -> list[Member]:
        """All members of a grid or random sweep (configs x seeds, seeds innermost). The Bayesian
        strategy creates its members as it goes (:func:`workbench.sweeps.runner.run_sweep`)."""
        if self.strategy == "bayes":
            raise SweepSpecError("strategy: 'bayes' members are proposed by Optuna while the sweep runs; "
                                 "use run_sweep()")
        points = self.grid_points() if self.strategy == "grid" else self.random_points()
        out = [Member(i * len(self.seeds) + j, p, s, self.config_for(p, s), trial=i)
               for i, p in enumerate(points) for j, s in enumerate(self.seeds)]
        cap = self.budget.get("max_members")
        if cap is not None and len(out) > cap:
            raise SweepSpecError(f"budget.max_members: the sweep has {len(out)} members, more than the budget of {cap}")
        return out

    def pruning_step(self, steps: int) -> int:
        """The step a member of ``steps`` steps is paused at for the pruning decision."""
        if self.pruning is None:
            raise SweepSpecError("pruning: off for this sweep")
        return max(1, int(math.floor(self.pruning["at_fraction"] * steps)))

    def n_members(self) -> int:
        if self.strategy == "bayes":
            return int(self.budget["trials"]) * len(self.seeds)
        if self.strategy == "random":
            return int(self.budget["trials"]) * len(self.seeds)
        return math.prod(len(a.values or []) for a in self.axes) * len(self.seeds)

    # ------------------------------------------------------------------ validation
    def validate(self, *, engine: bool = True) -> SweepSpec:
        """Check names against the registries and (``engine=True``, when ``workbench.train`` exists)
        every member config through ``TrainConfig.from_dict``, before anything runs. Returns self."""
        for a in self.axes:
            if a.name == "schedule":
                for v in a.values or []:
                    _check_schedule(v, "axes.schedule")
            if a.name == "optimizer":
                for v in a.values or []:
                    _check_optimizer(v, "axes.optimizer")
        if "schedule" in self.base:
            _check_schedule(self.base["schedule"], "base.schedule")
        if "optimizer" in self.base:
            _check_optimizer(self.base["optimizer"], "base.optimizer")
        n = self.n_members()
        cap = self.budget.get("max_members")
        if cap is not None and self.strategy != "bayes" and n > cap:
            raise SweepSpecError(f"budget.max_members: the sweep has {n} members, more than the budget of {cap}")
        if n > MAX_MEMBERS:
            sizes = " x ".join([*(f"{len(a.values or [])} ({a.name})" for a in self.axes), f"{len(self.seeds)} (seeds)"])
            raise SweepSpecError(f"axes: the sweep has {n:.3g} members ({sizes}), more than the {MAX_MEMBERS:,} "
                                 "one sweep may have; narrow the axes or use strategy 'random' with budget.trials")
        if self.strategy == "grid" and n // len(self.seeds) <= FULL_CHECK:
            points = self.grid_points()
        else:  # each value of a list axis and both ends of each range, the other axes at their first corner
            first = {a.name: a.corners()[0] for a in self.axes}
            points = [first] + [{**first, a.name: c} for a in self.axes for c in a.corners()[1:]]
        cfgs = [self.config_for(p, self.seeds[0]) for p in points]
        for lk in self.linked:
            for c in cfgs:
                for k in (lk.param, lk.scale_with):
                    if _get(c, k) is None:
                        raise SweepSpecError(f"linked: {k!r} is neither in base nor in axes")
        if engine:
            from workbench.train import TrainConfig

            for p, c in zip(points, cfgs):
                try:
                    tc = TrainConfig.from_dict(c)
                except ValueError as e:
                    where = ", ".join(f"{k}={_key(v)}" for k, v in p.items()) or "base"
                    raise SweepSpecError(f"member ({where}): {e}") from None
                if self.pruning is not None:
                    self._check_pruning_points(tc.steps, tc.eval_every, tc.log_every)
        return self

    def _check_pruning_points(self, steps: int, eval_every: int, log_every: int) -> None:
        """Pruning must see ``min_points`` logged objective values before the pause, else it could never
        prune and would silently do nothing."""
        metric = self.objective["metric"]
        every, field_ = (eval_every, "eval_every") if metric.startswith("test_") else (log_every, "log_every")
        at = self.pruning_step(steps)
        n = (at - 1) // every
        if n < self.pruning["min_points"]:
            raise SweepSpecError(
                f"pruning.at_fraction: pausing at step {at} of {steps} leaves {n} logged values of "
                f"{metric!r} ({field_}={every}), fewer than pruning.min_points={self.pruning['min_points']}; "
                f"raise at_fraction or lower {field_} or min_points")


# ---------------------------------------------------------------------------------------- helpers
PRUNING_KEYS = ("at_fraction", "threshold", "min_points", "families")


def _pruning(v: Any) -> dict[str, Any] | None:
    """Normalise the ``pruning`` field: false / None -> None; true or a mapping -> every key filled in."""
    if v is None or v is False:
        return None
    if v is True:
        v = {}
    if not isinstance(v, Mapping):
        raise SweepSpecError(f"pruning: must be true, false or a mapping {{{', '.join(PRUNING_KEYS)}}}, got {v!r}")
    bad = set(v) - set(PRUNING_KEYS)
    if bad:
        raise SweepSpecError(f"pruning: unknown key {sorted(bad)[0]!r}; allowed: {', '.join(PRUNING_KEYS)}")
    from workbench.fit.learning_curves import FAMILIES
    from workbench.sweeps.pruning import PRUNER_FAMILIES

    out = {"at_fraction": v.get("at_fraction", 0.5), "threshold": v.get("threshold", 0.05),
           "min_points": v.get("min_points", 8), "families": v.get("families", list(PRUNER_FAMILIES))}
    for k in ("at_fraction", "threshold"):
        _number(f"pruning.{k}", out[k])
        if not 0 < out[k] < 1:
            raise SweepSpecError(f"pruning.{k}: must lie in the open interval (0, 1), got {out[k]!r}")
        out[k] = float(out[k])
    mp = out["min_points"]
    if isinstance(mp, bool) or not isinstance(mp, int) or mp < 4:
        raise SweepSpecError(f"pruning.min_points: must be an integer >= 4, got {mp!r}")
    fams = out["families"]
    if isinstance(fams, str):
        fams = [fams]
    if not isinstance(fams, (list, tuple)) or not fams or not all(f in FAMILIES for f in fams):
        raise SweepSpecError(f"pruning.families: must be a non-empty list of curve families from "
                             f"{', '.join(FAMILIES)}; got {out['families']!r}")
    out["families"] = list(dict.fromkeys(fams))
    return out


def _number(where: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise SweepSpecError(f"{where}: must be a finite number, got {v!r}")


def _check_metric_mode(where: str, d: dict, need_value: bool) -> None:
    allowed = {"metric", "mode", "value"} if need_value else {"metric", "mode"}
    bad = set(d) - allowed
    if bad:
        raise SweepSpecError(f"{where}: unknown key {sorted(bad)[0]!r}; allowed: {', '.join(sorted(allowed))}")
    if not isinstance(d.get("metric"), str) or not d["metric"]:
        raise SweepSpecError(f"{where}.metric: must be a metric name such as 'test_loss', got {d.get('metric')!r}")
    d.setdefault("mode", "min")
    if d["mode"] not in MODES:
        raise SweepSpecError(f"{where}.mode: must be 'min' or 'max', got {d['mode']!r}")
    if need_value:
        if "value" not in d:
            raise SweepSpecError(f"{where}.value: required (the target the metric must reach)")
        _number(f"{where}.value", d["value"])


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _key(v: Any) -> Any:
    """A hashable, printable label of an axis value (dicts as compact JSON)."""
    if isinstance(v, (Mapping, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return v


def _get(cfg: Mapping, path: str) -> Any:
    cur: Any = cfg
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set(cfg: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = cfg
    for part in parts[:-1]:
        nxt = cur.get(part)
        if nxt is None:
            nxt = cur[part] = {}
        elif isinstance(nxt, str) and part == "schedule":   # schedule: cosine + axis schedule.warmup_steps
            nxt = cur[part] = {"name": nxt}
        elif not isinstance(nxt, dict):
            raise SweepSpecError(f"axes.{path}: {part!r} is {nxt!r}, not a mapping")
        cur = nxt
    cur[parts[-1]] = value


def _check_schedule(v: Any, where: str) -> None:
    from workbench import schedules

    available = schedules.available()
    name = v.get("name") if isinstance(v, Mapping) else v
    if not isinstance(name, str) or name not in available:
        raise SweepSpecError(f"{where}: unknown schedule {name!r}; available: {', '.join(sorted(available))}")


def _check_optimizer(v: Any, where: str) -> None:
    from workbench import optim

    available = list(optim.available_optimizers())
    name = v.get("name") if isinstance(v, Mapping) else v
    if not isinstance(name, str) or name not in available:
        raise SweepSpecError(f"{where}: unknown optimizer {name!r}; available: {', '.join(sorted(available))}")
