"""The training engine: one run, or a stack of N runs trained as one batched model.

``train(cfg)`` trains one run with a plain ``nn.Module`` and a library optimizer; ``train_batched(cfgs)``
trains N members at once (parameters and buffers stacked [N, ...], the forward ``torch.func.vmap`` over
``functional_call``, per-member LR / weight decay / betas as [N] tensors); ``resume(run_id, store)``
continues a killed or paused run at the exact step. A member trained in a stack equals the same config
trained alone (fp32, same seed) to 1e-5 relative over 100 steps (tests/test_train_batched.py).

Layout (read :mod:`workbench.train.loop` first — it is the whole loop, top to bottom):

* :mod:`~workbench.train.config` — ``TrainConfig`` (declared ranges, ``BATCHABLE_FIELDS``, presets)
* :mod:`~workbench.train.loop` — ``while step < end``: eval, measures, forward / backward, step, log, checkpoint
* :mod:`~workbench.train.backends` — ``ModuleBackend`` (N = 1, any optimizer), ``StackBackend`` (vmap)
* :mod:`~workbench.train.data` — the members' batches (data order a pure function of seed and step)
* :mod:`~workbench.train.measures` — metrics on the device; :mod:`~workbench.train.sink` — host copies,
  store, divergence, progress bar; :mod:`~workbench.train.checkpoint` — files shared with the sweeps
* :mod:`~workbench.train.fork` — ``fork``: cooldowns branched from a run's constant-LR checkpoints
  (``fork_points``) as one batched launch (Hägele et al. 2024)
* :mod:`~workbench.train.run` — ``train`` / ``train_batched`` / ``resume``; :mod:`~workbench.train.cli` —
  ``workbench run``

``until=k`` (``train`` / ``train_batched`` / ``resume``) pauses a run at step k *without* changing its
``steps``: it writes a checkpoint at k and leaves the run ``interrupted``, so :func:`resume` finishes it
exactly as if it had never stopped (the schedule still sees the full horizon). The sweep runner uses it
to prune trials from their learning curves. A stack member marked ``pruned`` is left out when its stack
resumes.
"""

from workbench.optim import BatchedUnsupportedError
from workbench.train.cli import DEFAULT_GROKKING_PRESET, GROKKING_PRESETS, cli_main, config_from_args
from workbench.train.config import BATCHABLE_FIELDS, PRESETS, ConfigError, TrainConfig, batch_key
from workbench.train.data import batch_indices
from workbench.train.fork import SHAPES as FORK_SHAPES
from workbench.train.fork import cooldown_schedule, fork
from workbench.train.loop import RunResult
from workbench.train.run import learning_rates, multipliers, resume, train, train_batched
from workbench.train.sink import default_progress

__all__ = ["TrainConfig", "RunResult", "ConfigError", "BatchedUnsupportedError", "BATCHABLE_FIELDS", "PRESETS",
           "batch_key", "GROKKING_PRESETS", "DEFAULT_GROKKING_PRESET", "train", "train_batched", "resume", "cli_main", "config_from_args", "batch_indices",
           "multipliers", "learning_rates", "default_progress", "fork", "cooldown_schedule", "FORK_SHAPES"]
