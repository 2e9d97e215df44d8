"""Batched training of deep ReLU nets to zero hinge loss, linear or quadratic, on per-member data.

This is the chapter's own trainer, built on the public batched functions of
``asbbook.ensemble`` (:func:`~asbbook.ensemble.batched_forward`,
:func:`~asbbook.ensemble.batched_backward`) because ``ensemble.train_ensemble`` offers neither
the quadratic hinge nor one dataset per member. Two losses of the margins ``m_mu = y_mu f(x_mu)``
(means over the ``P`` examples, per member):

* ``"hinge"``: ``max(0, Delta_mu)`` with ``Delta_mu = 1 - m_mu``;
* ``"quadratic_hinge"``: ``max(0, Delta_mu)^2 / 2``, the loss of the jamming analysis of deep
  networks (Geiger et al. 2019, PRE; Spigler et al. 2019), whose minima in the unsatisfiable
  phase have a finite number ``N_Delta`` of unsatisfied margins ``Delta_mu > 0``.

**Padded groups.** Members of one depth but different hidden widths are zero-padded to the widest
member and trained as one stack (one ``bmm`` per layer for all of them). The padding is exact:
a padded unit has zero incoming and zero outgoing weights, so its pre-activation and output are
0, its back-propagated signal ``delta = (delta W^{l+1}) 1[z > 0]`` is 0, both its weight
gradients vanish, and Adam's step ``m / (sqrt(v) + eps)`` with ``m = v = 0`` is 0: the padded
weights stay zero and the member computes what its unpadded network computes (up to the
summation order of the matrix products). Merging the narrow, budget-bound widths this way
removes most of the per-step Python and kernel-launch overhead that dominates small networks.

Optimiser: Adam (Kingma & Ba 2015) in ``torch.optim.Adam``'s form, full batch. A member stops
at the first step at which every margin is at least 1 (the loss is then exactly 0, for both
losses), or when its loss is no longer finite (``diverged``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from asbbook import ensemble, nets, validation

LOSSES = ("hinge", "quadratic_hinge")


def margin_loss_and_grad(f: torch.Tensor, y: torch.Tensor, loss: str):
    """Per-member loss ``(K,)``, ``dloss/df`` ``(K, P)`` and the unsatisfied count ``(K,)``.

    With ``Delta = 1 - y f``: hinge ``mean max(0, Delta)``, gradient ``-y 1[Delta > 0] / P``;
    quadratic hinge ``mean max(0, Delta)^2 / 2``, gradient ``-y max(0, Delta) / P``
    (Geiger et al. 2019). ``N_Delta = #{mu: Delta_mu > 0}``.
    """
    n = f.shape[-1]
    gap = torch.relu(1 - y * f)
    unsatisfied = (gap > 0).sum(dim=-1)
    if loss == "hinge":
        return gap.sum(dim=-1) / n, (gap > 0) * (-y / n), unsatisfied
    return (gap * gap).sum(dim=-1) / (2 * n), gap * (-y / n), unsatisfied


def padded_initial_weights(
    widths_list, replicates, seed: int, *, dtype=torch.float64, device="cpu"
) -> list[torch.Tensor]:
    """He-initialised weights of members of one depth (``widths_list[k] = (n_0, .., n_L)``,
    ``replicates[k]``), each exactly ``ensemble.member_weights(MemberSpec(widths, replicate),
    seed)``, zero-padded to the widest member: a list of ``(K, n_l^max, n_{l-1}^max)``."""
    shapes = [validation.check_widths(w) for w in widths_list]
    if not shapes or len({len(w) for w in shapes}) != 1:
        raise ValueError("widths_list must hold width tuples of one depth")
    if len({w[0] for w in shapes}) != 1 or len({w[-1] for w in shapes}) != 1:
        raise ValueError("widths_list members must share n_0 and n_L")
    widest = tuple(max(w[i] for w in shapes) for i in range(len(shapes[0])))
    K = len(shapes)
    validation.check_memory(
        "widths_list", 3.0 * K * nets.parameter_count(widest) * validation.element_bytes(dtype)
    )
    dev = validation.resolve_device(device)
    out = [
        torch.zeros(K, n_out, n_in, dtype=dtype, device=dev)
        for n_in, n_out in zip(widest[:-1], widest[1:], strict=True)
    ]
    for k, (w, r) in enumerate(zip(shapes, replicates, strict=True)):
        spec = ensemble.MemberSpec(w, int(r))
        for layer, weight in enumerate(ensemble.member_weights(spec, seed, dtype, dev)):
            out[layer][k, : weight.shape[0], : weight.shape[1]] = weight
    return out


@dataclass(frozen=True)
class PaddedTraining:
    """Per-member outcome of :func:`train_padded` (numpy arrays of length ``K``)."""

    converged: np.ndarray  # every margin >= 1 within the budget
    steps: np.ndarray  # Adam updates applied (for a converged member: steps to zero loss)
    n_unsatisfied: np.ndarray  # N_Delta = #{mu: y f < 1} at the final weights
    loss: np.ndarray  # final loss
    diverged: np.ndarray  # loss not finite (the member stopped there)
    weights: list[torch.Tensor]  # final (padded) weights, (K, n_l, n_{l-1}) per layer


def _adam_(w, g, m, v, t: int, lr: float, b1: float = 0.9, b2: float = 0.999, eps=1e-8):
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    denom = v.sqrt().div_(math.sqrt(1 - b2**t)).add_(eps)
    w.addcdiv_(m, denom, value=-lr / (1 - b1**t))


def train_padded(
    weights, X, y, *, loss: str = "hinge", lr: float = 0.01, steps: int = 1000
) -> PaddedTraining:
    """Full-batch Adam on stacked (padded) weights ``(K, n_l, n_{l-1})``, member ``k`` on its own
    data ``X[k]`` ``(P, n_0)`` and labels ``y[k]`` ``(P,)`` (``X``: ``(K, P, n_0)``, ``y``:
    ``(K, P)``, or shared ``(P, n_0)``/``(P,)``), stopping each member at zero loss."""
    loss = validation.check_choice("loss", loss, LOSSES)
    lr = validation.check_real("lr", lr, positive=True, maximum=1e6)  # beyond: overflow
    steps = validation.check_int("steps", steps, minimum=1, maximum=10**7)
    weights = [w.clone() for w in weights]
    K = weights[0].shape[0]
    dtype, dev = weights[0].dtype, weights[0].device
    X = validation.as_float_tensor("X", X, dtype=dtype, device=dev)
    y = validation.as_float_tensor("y", y, dtype=dtype, device=dev)
    X = X.expand(K, -1, -1) if X.ndim == 2 else X
    y = y.expand(K, -1) if y.ndim == 1 else y
    if X.shape[:1] != (K,) or y.shape != X.shape[:2] or X.shape[2] != weights[0].shape[2]:
        raise ValueError(f"X {tuple(X.shape)} and y {tuple(y.shape)} do not fit {K} members")
    if not ((y == 1) | (y == -1)).all():
        raise ValueError("y must hold labels -1 or +1")
    ids = torch.arange(K, device=dev)
    m1 = [torch.zeros_like(w) for w in weights]
    m2 = [torch.zeros_like(w) for w in weights]
    out_steps = np.full(K, steps, dtype=np.int64)
    out_unsat = np.zeros(K, dtype=np.int64)
    out_loss = np.full(K, math.nan)
    out_conv = np.zeros(K, dtype=bool)
    out_div = np.zeros(K, dtype=bool)
    final = [torch.zeros_like(w) for w in weights]

    def retire(index, t, value, unsat, converged, diverged):
        pos = ids[index].cpu().numpy()
        out_steps[pos] = t
        out_unsat[pos] = unsat[index].cpu().numpy()
        out_loss[pos] = value[index].cpu().numpy()
        out_conv[pos] = converged
        out_div[pos] = diverged
        for layer, w in enumerate(weights):
            final[layer][ids[index]] = w[index]

    for t in range(steps + 1):
        zs, hs = ensemble.batched_forward(weights, X, keep_preactivations=False)
        value, grad_f, unsat = margin_loss_and_grad(zs[-1][..., 0], y, loss)
        # a NaN output makes every comparison false, so "no margin below 1" alone could
        # certify a diverged member: zero loss needs a finite loss too (a (K,)-element check)
        bad = ~torch.isfinite(value)
        done = (unsat == 0) & ~bad
        if t == steps:
            retire(torch.arange(len(ids), device=dev), t, value, unsat, False, False)
            out_conv[ids[done].cpu().numpy()] = True
            out_div[ids[bad].cpu().numpy()] = True
            break
        stop = done | bad
        if bool(stop.any()):
            retire(done.nonzero()[:, 0], t, value, unsat, True, False)
            if bool(bad.any()):
                retire(bad.nonzero()[:, 0], t, value, unsat, False, True)
            keep = (~stop).nonzero()[:, 0]
            if len(keep) == 0:
                break
            ids, X, y, grad_f = ids[keep], X[keep], y[keep], grad_f[keep]
            weights = [w[keep] for w in weights]
            m1, m2 = [m[keep] for m in m1], [v[keep] for v in m2]
            hs = [X] + [h[keep] for h in hs[1:]]
        grads = ensemble.batched_backward(weights, hs, grad_f)
        for layer, g in enumerate(grads):
            _adam_(weights[layer], g, m1[layer], m2[layer], t + 1, lr)
    return PaddedTraining(out_conv, out_steps, out_unsat, out_loss, out_div, final)
