"""The fitted domain of a law and how far a query lies from it (extrapolation flags).

A :class:`Domain` records what the fit saw: for the point laws the range of every input (N, D, C, ...);
for the schedule-aware laws the longest fitted curve (steps), the largest LR area S1 = Σ η and the peak
LR and the lowest LR fitted points were at. A query gets a distance ratio r ≥ 1 (1 inside; for curves the
largest of step / longest fitted step, S1 / fitted S1, peak LR / fitted peak LR and lowest fitted LR / the
query's current LR, an anneal deeper than any fitted; for points how many times beyond the fitted range an
input lies) and a flag: ``inside`` (r = 1), ``mild`` (r ≤ :data:`MILD`) or ``far``. Every prediction past 1.5x
the fitted horizon is therefore flagged ``far``; calibrated bands (:mod:`workbench.fit.calibration`)
widen with log r.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

MILD = 1.5  # distance ratios up to this are "mild", beyond "far"
FLAGS = ("inside", "mild", "far")


class ExtrapolationWarning(UserWarning):
    """A prediction lies outside the fitted domain (see ``Prediction.flags`` and ``.why``)."""


def _curve_stats(inputs: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per point: step s, LR area S1(s) = Σ_{i<s} η_i, the peak LR of updates 0..s−1 and the LR of the last
    applied update s−1 (step convention)."""
    step = np.asarray(inputs["step"]).astype(np.int64)
    curve = np.asarray(inputs["curve"]).astype(np.int64) if "curve" in inputs else np.zeros(len(step), np.int64)
    S1 = np.zeros(len(step))
    peak = np.zeros(len(step))
    last = np.zeros(len(step))
    for c, lr in enumerate(inputs["lrs"]):
        sel = np.nonzero(curve == c)[0]
        if not len(sel):
            continue
        lr = np.asarray(lr, float)
        cs = np.concatenate([[0.0], np.cumsum(lr)])
        pk = np.concatenate([[0.0], np.maximum.accumulate(lr)])
        s = np.clip(step[sel], 0, len(lr))
        S1[sel], peak[sel] = cs[s], pk[s]
        last[sel] = lr[np.maximum(s - 1, 0)]
    return step.astype(float), S1, peak, last


@dataclass
class Domain:
    """What a fit saw. ``kind``: "curves" or "points"; ``ranges``: name -> (low, high)."""

    kind: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, law: object, inputs: Mapping) -> Domain:
        if "lrs" in getattr(law, "inputs", ()) and "lrs" in inputs:
            step, S1, peak, last = _curve_stats(inputs)
            pos = last[last > 0]
            return cls("curves", {"step": (float(step.min()), float(step.max())), "S1": (float(S1.min()), float(S1.max())),
                                  "peak_lr": (float(peak.min()), float(peak.max())),
                                  "lr": (float(pos.min()) if len(pos) else 0.0, float(last.max()))})
        rng = {}
        for k in law.inputs:
            if k in inputs and k != "curve":
                v = np.asarray(inputs[k], float)
                rng[k] = (float(np.nanmin(v)), float(np.nanmax(v)))
        return cls("points", rng)

    def distance(self, inputs: Mapping) -> tuple[np.ndarray, list[str]]:
        """Distance ratio r ≥ 1 of every query point and, per point, the reason ("" inside)."""
        if self.kind == "curves":
            step, S1, peak, last = _curve_stats(inputs)
            parts = {"step": step / max(self.ranges["step"][1], 1e-300),
                     "S1": S1 / max(self.ranges["S1"][1], 1e-300),
                     "peak_lr": peak / max(self.ranges["peak_lr"][1], 1e-300)}
            what = {"step": ("step", "the longest fitted curve", "{:.0f}"),
                    "S1": ("LR area S1", "the largest fitted S1", "{:.4g}"),
                    "peak_lr": ("peak LR", "the fitted peak LR", "{:.3g}")}
            vals = {"step": step, "S1": S1, "peak_lr": peak}
            lo_lr = self.ranges.get("lr", (0.0, 0.0))[0]
            if lo_lr > 0:  # annealed to a lower LR than any fitted point saw
                parts["lr"] = lo_lr / np.maximum(last, 1e-300)
                what["lr"] = ("current LR", "below the lowest fitted LR", "{:.3g}")
                vals["lr"] = last
        else:
            parts, what, vals = {}, {}, {}
            for k, (lo, hi) in self.ranges.items():
                if k not in inputs:
                    continue
                x = np.asarray(inputs[k], float)
                if lo > 0 and np.all(x > 0):
                    r = np.maximum(np.maximum(x / hi, lo / x), 1.0)
                else:
                    r = 1.0 + np.maximum(np.maximum(x - hi, lo - x), 0.0) / max(hi - lo, 1e-300)
                parts[k], what[k], vals[k] = r, (k, f"the fitted range [{lo:.4g}, {hi:.4g}]", "{:.4g}"), x
        if not parts:
            return np.ones(0), []
        names = list(parts)
        R = np.stack([np.maximum(parts[k], 1.0) for k in names])
        ratio = R.max(0)
        arg = R.argmax(0)
        why = []
        for i, r in enumerate(ratio):
            if r <= 1 + 1e-9:
                why.append("")
                continue
            k = names[arg[i]]
            label, ref, fmt = what[k]
            if self.kind == "curves" and k == "lr":
                why.append(f"{label} {fmt.format(vals[k][i])} is {r:.2f}x {ref} ({fmt.format(self.ranges[k][0])})")
            elif self.kind == "curves":
                why.append(f"{label} {fmt.format(vals[k][i])} is {r:.2f}x {ref} ({fmt.format(self.ranges[k][1])})")
            else:
                why.append(f"{label} = {fmt.format(vals[k][i])} lies {r:.2f}x outside {ref}")
        return ratio, why

    def to_dict(self) -> dict:
        return {"kind": self.kind, "ranges": {k: list(v) for k, v in self.ranges.items()}}

    @classmethod
    def from_dict(cls, d: Mapping | None) -> Domain | None:
        if not d:
            return None
        return cls(d["kind"], {k: (float(v[0]), float(v[1])) for k, v in d["ranges"].items()})

    def describe(self) -> str:
        return ", ".join(f"{k} {lo:.4g}..{hi:.4g}" for k, (lo, hi) in self.ranges.items())


def flags_of(ratio: np.ndarray) -> np.ndarray:
    """``inside`` / ``mild`` / ``far`` per distance ratio."""
    ratio = np.asarray(ratio, float)
    return np.where(ratio <= 1 + 1e-9, "inside", np.where(ratio <= MILD, "mild", "far")).astype(object)


def warn_outside(flags: np.ndarray, why: list[str], what: str = "prediction") -> None:
    """One ExtrapolationWarning summarising the flagged points (nothing when all are inside)."""
    flags = np.asarray(flags)
    n_far, n_mild = int(np.sum(flags == "far")), int(np.sum(flags == "mild"))
    if not n_far and not n_mild:
        return
    worst = next((w for f, w in zip(flags, why) if f == "far"), None) or next(w for w in why if w)
    warnings.warn(ExtrapolationWarning(f"{what}: {n_far} point(s) far and {n_mild} mildly outside the fitted domain "
                                       f"(e.g. {worst}); see the flags and the widened band"), stacklevel=3)
