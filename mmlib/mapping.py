"""Cross-modal mapping: thresholded cosine-correlation alignment (paper Eq. 9-11).

Given the running representation ``h`` (the weaker side, already fused) and the next modality's
features ``x`` (the stronger side), a correlation matrix ``C`` is built, entries ``<= tau`` are set
to zero (Eq. 10, ``tau`` is the correlation threshold), the diagonal is set to one, and ``x`` is
re-expressed through ``C`` (Eq. 11). All functions accept any leading dimensions (e.g.
``(K, B, d)`` for ``K`` fusion orders at once).

``sample``   C is ``(B, B)``: ``C[r, q] = cos(h_r, x_q)``; ``x_hat = C^T x``, so sample ``q`` adds the
             strong features of the batch neighbours whose weak features correlate with it.
             Predictions therefore depend on the batch: evaluate with a fixed batch size.
``feature``  C is ``(d, d)`` over feature columns across the batch; ``x_hat = x C``.
``none``     ``x_hat = x`` (the "w/o cross-modal mapping" ablation).

Where the paper is silent, and what the code chose

- Which axis C runs over. Eq. 9 indexes C by the samples r, q, while the text speaks of aligning
  "at both the sample and feature levels": ``mode`` offers both, "sample" by default.
  Chapter: ambiguities (section 1).
- Eq. 11 is read literally, ``X_hat = X C`` with samples as the columns of X: strong sample q
  gathers ``sum_r C[r, q] x_r`` (``C^T x`` in this module's rows-are-samples layout), the strong
  samples whose *weak* features correlate with it. The other reading, ``C X`` (weak sample r
  gathering the strong samples it correlates with), is not implemented. Not measured.
- The weights are summed raw, as printed (``row_normalize=False``, the method ``ours``), which
  makes ``x_hat`` grow with the batch; ``row_normalize`` divides each output row's weights by their
  sum (``ours_rownorm``). Chapters: ambiguities (accuracy on three views, the scale of ``x_hat``),
  main_comparison (accuracy on two views).
- Eq. 10 thresholds the signed cosine: negative correlations fall below tau and are zeroed with
  the weak ones (not ``|C| <= tau``); the diagonal is then set to one, as printed. Not measured.
- Gradient flows through C (``correlation_gradient=True``): the paper does not say whether C is a
  constant of the step. ``False`` detaches it. Chapter: ambiguities (accuracy over seeds, and how
  much the trained encoder's gradient changes at k = 2 and 3).
- Eq. 9 computes C "over each training batch", and evaluation here maps an evaluation chunk the
  same way (``batch="batch"``). Algorithm 1's loop visits one instance at a time, where C = [1]
  and the mapping returns x unchanged; ``batch="instance"`` evaluates so (training still maps the
  batch). Chapter: ambiguities.

Several processes (:mod:`mmlib.distributed`): both readings correlate across the samples of the
batch, so a rank's shard alone would give other weights than the whole batch. While a rank steps on
its shard (``world.batch`` set), :class:`CrossModalMapping` gathers ``h`` and ``x`` of the global
batch from every rank (differentiable: each rank's loss sends gradient to every rank's rows), maps
the whole batch exactly as one process does, and keeps this rank's rows. Evaluation chunks are
never split across ranks, so there it maps its inputs as they are.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlib.distributed import World

MAPPING_MODES = ("sample", "feature", "none")
MAPPING_BATCHES = ("batch", "instance")


def correlation_matrix(h: Tensor, x: Tensor, mode: str, tau: float) -> Tensor:
    """Thresholded correlation with unit diagonal. ``(..., B, d), (..., B, d)`` -> ``(..., B, B)`` or
    ``(..., d, d)``."""
    if mode == "sample":
        corr = _unit(h, -1) @ _unit(x, -1).mT
    elif mode == "feature":
        corr = _unit(h, -2).mT @ _unit(x, -2)
    else:
        raise ValueError(f"correlation_matrix mode must be 'sample' or 'feature', got {mode!r}")
    return torch.where(corr > tau, corr, 0.0).diagonal_scatter(torch.ones_like(corr[..., 0]), dim1=-2, dim2=-1)


def _unit(t: Tensor, dim: int) -> Tensor:
    """``t`` scaled to unit L2 norm along ``dim`` (``F.normalize`` in fewer operations)."""
    return t / torch.linalg.vector_norm(t, dim=dim, keepdim=True).clamp_min(1e-12)


class CrossModalMapping(nn.Module):
    """``(h, x) -> x_hat``, shapes ``(..., B, d), (..., B, d) -> (..., B, d)``. Parameter-free."""

    def __init__(self, mode: str = "sample", tau: float = 0.2, row_normalize: bool = False,
                 correlation_gradient: bool = True, batch: str = "batch") -> None:
        super().__init__()
        if mode not in MAPPING_MODES:
            raise ValueError(f"mapping mode must be one of {MAPPING_MODES}, got {mode!r}")
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau (the correlation threshold of Eq. 10) must lie in [0, 1], got {tau}")
        if batch not in MAPPING_BATCHES:
            raise ValueError(f"mapping batch must be one of {MAPPING_BATCHES}, got {batch!r}")
        self.mode, self.tau, self.row_normalize = mode, float(tau), bool(row_normalize)
        self.correlation_gradient, self.batch = bool(correlation_gradient), batch
        self.world: World | None = None  # set by Ours.distribute: the processes a batch is split over

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        if self.mode == "none":
            return x
        if self.batch == "instance" and not self.training:  # Algorithm 1: each instance on its own
            return self._map(h.unsqueeze(-2), x.unsqueeze(-2)).squeeze(-2)
        if self.world is not None and self.world.batch is not None:
            if h.dim() != 2:
                raise ValueError(f"a batch split over processes is mapped as (B, d), got {tuple(h.shape)}")
            return self._map(self.world.gather(h), self.world.gather(x))[self.world.rows()]
        return self._map(h, x)

    def _map(self, h: Tensor, x: Tensor) -> Tensor:
        corr = correlation_matrix(h, x, self.mode, self.tau)
        if not self.correlation_gradient:
            corr = corr.detach()
        if self.mode == "sample":
            weights = corr.transpose(-1, -2)  # row q: how much of each x_r flows into x_hat_q
            if self.row_normalize:
                weights = weights / weights.sum(dim=-1, keepdim=True)
            return weights @ x
        if self.row_normalize:
            corr = corr / corr.sum(dim=-2, keepdim=True)
        return x @ corr

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, tau={self.tau}, row_normalize={self.row_normalize}, "
                f"correlation_gradient={self.correlation_gradient}, batch={self.batch!r}")
