"""The names of the metrics the training engine writes, as plain data (no torch import), for the
apps that order and describe them; :mod:`workbench.metrics` computes them."""

from __future__ import annotations

METRIC_NAMES: tuple[str, ...] = (
    "train_loss", "train_acc", "test_loss", "test_acc", "lr", "weight_norm", "grad_norm", "grad_weight_cos",
    "sc_fraction", "zero_loss_fraction", "eff_lr", "sharpness", "restricted_loss", "excluded_loss",
    "key_freq_0", "key_freq_1", "key_freq_2", "key_freq_3", "key_freq_4", "sum_sq_weights", "diverged",
)
"""Metric names the engine writes to the store. Per-tensor weight norms are written as
``weight_norm/<parameter name>`` (see :data:`METRIC_PREFIXES`)."""
METRIC_PREFIXES: tuple[str, ...] = ("weight_norm/",)
METRIC_DOCS = {
    "train_loss": "mean loss on the training batch (full batch: the train set)",
    "train_acc": "accuracy on the training batch",
    "test_loss": "mean loss on the test set",
    "test_acc": "accuracy on the test set",
    "lr": "learning rate of this step (peak x schedule multiplier)",
    "weight_norm": "L2 norm of all parameters",
    "grad_norm": "L2 norm of the gradient (before clipping and filters)",
    "grad_weight_cos": "cosine between the gradient and the weights",
    "sc_fraction": "fraction of samples in Softmax Collapse (sum exp(x - max) == 1 in float32)",
    "zero_loss_fraction": "fraction of per-sample losses exactly 0",
    "eff_lr": "lr / |w|^2 averaged over scale-invariant tensors",
    "sharpness": "top Hessian eigenvalue of the training loss (power iteration)",
    "restricted_loss": "Nanda: loss of the key-frequency part of the logits, all pairs",
    "excluded_loss": "Nanda: loss with the key-frequency part removed, train pairs",
    "sum_sq_weights": "sum of squared parameters",
    "diverged": "1 when the member's loss became NaN / inf",
}
