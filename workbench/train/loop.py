"""The training loop: N members (N = 1 for a plain run) from ``step`` to ``end``, top to bottom.

One pass of ``while step < end`` (nanoGPT's layout)::

    checkpoint every ``checkpoint_every`` steps
    eval / sharpness / progress measures of the current parameters (every ``*_every`` steps)
    x, y = the members' batch of this step
    logits, per-sample loss, loss[N] = forward; loss.sum().backward()
    train metrics of this update (every ``log_every`` steps)
    alive &= isfinite(loss); the update with lr[N] = the members' schedules at this step
    hand the step's metrics to the sink (store, divergence monitor, progress bar)

The loop does not know whether it drives one plain module or a stack of N under ``vmap``: the
backend (:mod:`workbench.train.backends`) hides that behind forward / step. A run paused by ``until``
(fewer steps than its horizon) ends with a checkpoint and stays ``interrupted``; a finished run ends
with the metrics of its final parameters. Members of a stack may have different ``steps``: each ends at
its own (its final metrics logged, its run finished, then frozen: no update, no rows) while the longest
go on (cooldown forks, :mod:`workbench.train.fork`). A step of ``fork_points`` writes a kept checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from workbench.errors import WorkbenchError
from workbench.train import checkpoint, measures
from workbench.train.backends import Backend
from workbench.train.config import TrainConfig
from workbench.train.data import MemberData
from workbench.train.sink import Sink


@dataclass
class RunResult:
    """The outcome of one run: id in the store (None without a store), final status, last metrics."""

    run_id: str | None
    status: str
    final: dict[str, float]
    step: int = 0
    config: dict = field(default_factory=dict)
    wall: float = 0.0
    params: dict[str, torch.Tensor] | None = None   # final parameters (CPU), with return_params=True


@dataclass
class Run:
    """What the loop drives: the members' configs, backend, data, LRs [N, steps] and position."""

    cfgs: Sequence[TrainConfig]
    model: Backend
    data: MemberData
    lrs: torch.Tensor
    store: Any
    run_ids: list[str | None]
    step: int = 0
    alive: torch.Tensor | None = None
    running: torch.Tensor | None = None   # [N] False once a member reached its own ``steps``
    generators: list[torch.Generator] = field(default_factory=list)   # each member's own RNG (run.py)

    def state_dict(self) -> dict:
        return {"step": self.step, **self.model.state_dict(), "alive": self.alive.clone(),
                "rng": torch.stack([g.get_state() for g in self.generators]) if self.generators else None,
                "configs": [c.to_dict() for c in self.cfgs],
                "stacked": self.model.member_dim}

    def checkpoint(self, fork_point: bool = False) -> None:
        checkpoint.save(self.state_dict(), self.cfgs[0], self.store, self.run_ids, fork_point)

    def updating(self) -> torch.Tensor:
        """The members the optimizer moves: alive and not yet at their own ``steps``."""
        return self.alive & self.running


def run_loop(run: Run, sink: Sink, until: int | None = None, resumed_at: int = -1,
             return_params: bool = False) -> list[RunResult]:
    cfg, model, data = run.cfgs[0], run.model, run.data
    ends = [c.steps for c in run.cfgs]                # one each: a ragged stack stops members at their own
    horizon, forks = max(ends), set(cfg.fork_points)
    end = horizon if until is None else min(horizon, until)
    run.running = torch.tensor([e > run.step for e in ends], device=run.alive.device)
    progress = measures.Progress(cfg, data) if cfg.progress_every else None
    t0, status = time.time(), "finished"
    try:
        while run.step < end and not sink.stop:
            step = run.step
            if ((cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step in forks) and 0 < step != resumed_at:
                sink.sync(run.alive, step, force=True)
                run.checkpoint(fork_point=step in forks)
            logs: dict[str, torch.Tensor] = {}
            if measures.due(cfg, step):                       # eval, sharpness, progress of the weights so far
                with model.evaluating():
                    logs.update(measures.measure(cfg, model, data, step, progress))

            x, y = data.train_batch(step)                     # the update
            logits, per_sample, loss = model.forward(x, y, data.xdim)
            loss.sum().backward()
            if step % cfg.log_every == 0:
                logs.update(measures.train_metrics(cfg, model, logits, per_sample, loss, y, run.lrs[:, step]))
            run.alive &= torch.isfinite(loss.detach())
            model.step(run.lrs[:, step], run.updating())
            run.step += 1
            sink.log(step, logs, run.alive, run.step)
            done = [i for i, e in enumerate(ends) if e == run.step < horizon]
            if done:                          # members at their own end: final metrics, finished, frozen
                _final(run, sink, progress, done)
                run.running[done] = False
                sink.finish(done)

        paused = run.step < horizon and not sink.stop
        if paused:                            # until=k: checkpoint at k, no final metrics, stay resumable
            sink.sync(run.alive, run.step, force=True)
            run.checkpoint()
        else:                                 # the metrics of the final parameters
            _final(run, sink, progress, [i for i, e in enumerate(ends) if e >= run.step])
            if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0 and run.step > 0:
                run.checkpoint()
    except KeyboardInterrupt:
        status = "interrupted"
        sink.sync(run.alive, run.step, force=True)
        raise
    except Exception as ex:
        status = "failed"
        try:  # e.g. a checkpoint that could not be written (disk full): say why
            sink.set_status("failed", error=f"{type(ex).__name__}: {ex}")
        except WorkbenchError:  # the store itself cannot be written: the original error matters more
            pass
        raise
    finally:
        try:
            sink.close()
        except WorkbenchError:
            if status != "failed":
                raise
        if status == "interrupted":
            sink.set_status("interrupted")
    return _results(run, sink, paused, return_params, time.time() - t0)


def _final(run: Run, sink: Sink, progress: Any, members: list[int]) -> None:
    """Log the metrics of the current parameters as the final rows of ``members``."""
    model, data = run.model, run.data
    with model.evaluating():
        final = {**measures.final_train_metrics(model, data, run.step), **measures.eval_metrics(model, data)}
        if progress is not None:
            final.update(progress(model, data))
    sink.log(run.step, final, run.alive, run.step, force=True, members=members)


def _results(run: Run, sink: Sink, paused: bool, return_params: bool, wall: float) -> list[RunResult]:
    sink.set_status("interrupted" if paused else "finished")
    out = []
    for i, rid in enumerate(run.run_ids):
        status = "diverged" if sink.dead[i] else ("interrupted" if paused and not sink.done[i] else "finished")
        params = None
        if return_params:
            with run.model.evaluating():
                params = {n: p[i].detach().cpu().clone() for n, p in zip(run.model.names, run.model.params())}
        out.append(RunResult(rid, status, dict(sink.final[i]), min(run.step, run.cfgs[i].steps), run.cfgs[i].to_dict(),
                             wall, params))
    return out
