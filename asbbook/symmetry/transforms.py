"""The exact symmetries of a bias-free ReLU network, acting on a weight list, and circuits.

Weights are ``[W^1, ..., W^L]`` with ``W^l`` shaped ``(..., n_l, n_{l-1})`` (leading ensemble
dimensions allowed). Every function returns new tensors and never modifies its input.
"""

from __future__ import annotations

import numpy as np
import torch

from asbbook import data, nets, validation


def _check_hidden_layer(widths: tuple[int, ...], layer) -> int:
    depth = len(widths) - 1
    layer = validation.check_int("layer", layer)
    if depth < 2:
        raise ValueError("weights has no hidden layer (it holds a single weight matrix)")
    if not 1 <= layer <= depth - 1:
        raise ValueError(f"layer must be a hidden layer between 1 and {depth - 1}, got {layer}")
    return layer


def _as_index_tensor(name: str, value) -> torch.Tensor:
    """Integer indices as a CPU long tensor; floats, bools and non-arrays are refused by name."""
    if isinstance(value, torch.Tensor):
        idx = value
    elif isinstance(value, np.ndarray | list | tuple):
        try:
            array = np.asarray(value)
            flat = np.asarray(value, dtype=object).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a regular array of integers, got {value!r}") from None
        if any(isinstance(v, bool | np.bool_) for v in flat):
            raise TypeError(f"{name} must hold integers, not booleans: {value!r}")
        if array.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got {value!r}")
        idx = torch.as_tensor(array)
    else:
        raise TypeError(f"{name} must be a sequence or array of integers, got {value!r}")
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"{name} must hold integers, got dtype {idx.dtype}")
    return idx.detach().cpu().to(torch.long)


def permute_hidden(weights, layer: int, perm) -> list[torch.Tensor]:
    """Relabel the units of hidden layer ``layer`` (``1 <= layer <= L-1``): new unit ``i`` is
    old unit ``perm[i]``.

    ``W'^l = W^l[perm, :]`` and ``W'^{l+1} = W^{l+1}[:, perm]``, so ``z'^l_i = z^l_{perm[i]}``,
    the gates are permuted alike and ``f' = f`` exactly (Chen et al. 1993)."""
    widths = validation.check_weights(weights)
    layer = _check_hidden_layer(widths, layer)
    n = widths[layer]
    idx = _as_index_tensor("perm", perm)
    if idx.ndim != 1 or idx.numel() != n or not torch.equal(idx.sort().values, torch.arange(n)):
        raise ValueError(f"perm must be a permutation of 0..{n - 1}, got {perm!r}")
    new = [w.clone() for w in weights]
    new[layer - 1] = weights[layer - 1].index_select(-2, idx.to(weights[layer - 1].device))
    new[layer] = weights[layer].index_select(-1, idx.to(weights[layer].device))
    return new


def rescale_unit(weights, layer: int, unit: int, c: float) -> list[torch.Tensor]:
    """Rescale unit ``unit`` of hidden layer ``layer``: ``W^l_{unit,:} -> c W^l_{unit,:}`` and
    ``W^{l+1}_{:,unit} -> W^{l+1}_{:,unit} / c`` with ``c > 0``.

    ``relu(c z) = c relu(z)`` and ``1[c z > 0] = 1[z > 0]``, so the output, every gate and every
    circuit coupling are unchanged (Neyshabur et al. 2015)."""
    widths = validation.check_weights(weights)
    layer = _check_hidden_layer(widths, layer)
    unit = validation.check_int("unit", unit, minimum=0, maximum=widths[layer] - 1)
    c = validation.check_real("c", c, positive=True)
    new = [w.clone() for w in weights]
    new[layer - 1][..., unit, :] *= c
    new[layer][..., :, unit] /= c
    return new


def path_couplings(weights, paths) -> torch.Tensor:
    """Couplings ``J_pi = prod_{l=1}^{L} W^l_{i_l i_{l-1}}`` of the given circuits only.

    ``paths`` is an integer array ``(M, L + 1)`` of 0-based circuits ``(i_0, ..., i_L)``;
    ``weights`` may carry leading ensemble dimensions. Returns ``(..., M)``."""
    widths = validation.check_weights(weights)
    idx = _as_index_tensor("paths", paths)
    depth = len(widths) - 1
    if idx.ndim != 2 or idx.shape[1] != depth + 1:
        raise ValueError(f"paths must be shaped (M, L + 1) = (M, {depth + 1}), got {idx.shape}")
    lead = weights[0].shape[:-2].numel()
    validation.check_memory("paths", 2.0 * lead * idx.shape[0] * weights[0].element_size())
    for k, n in enumerate(widths):
        if idx.shape[0] and (int(idx[:, k].min()) < 0 or int(idx[:, k].max()) >= n):
            raise ValueError(f"paths[:, {k}] must lie in 0..{n - 1}")
    out = None
    for layer, w in enumerate(weights):
        factor = w[..., idx[:, layer + 1].to(w.device), idx[:, layer].to(w.device)]
        out = factor if out is None else out * factor
    return out


def random_circuits(widths, n_circuits: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_circuits`` random circuits ``(n_circuits, L + 1)`` and partners that differ from them
    only in the input unit ``i_0`` (so ``J_pi J_pi'`` shares every edge but the first)."""
    widths = validation.check_widths(widths)
    n_circuits = validation.check_int("n_circuits", n_circuits, minimum=1, maximum=10**7)
    if widths[0] < 2:
        raise ValueError("widths[0] must be at least 2 for a partner circuit to exist")
    gen = data.torch_generator(seed, purpose="ch3-random-circuits")
    paths = torch.stack([torch.randint(n, (n_circuits,), generator=gen) for n in widths], 1)
    shift = 1 + torch.randint(widths[0] - 1, (n_circuits,), generator=gen)
    partners = paths.clone()
    partners[:, 0] = (paths[:, 0] + shift) % widths[0]
    return paths, partners


def exact_symmetry_residuals(weights, X, paths, seed: int) -> dict[str, float]:
    """Relative changes of one network under its exact symmetries, and under a sign flip.

    Every hidden layer is relabelled by a random permutation; separately every hidden unit is
    rescaled by its own log-uniform ``c in [1/10, 10]``. Reported: the largest change of ``f``
    relative to ``max |f|`` (both), of the couplings ``J_pi`` of ``paths`` (rescaling) and the
    number of changed gates (rescaling). As a contrast (not a symmetry of ``f``): flipping the
    sign of unit 0's in-weights of layer 1."""
    widths = validation.check_weights(weights, ensemble=False)
    X = validation.check_inputs(X, widths[0])
    gen = data.torch_generator(seed, purpose="ch3-exact-symmetries")
    f, gates = nets.forward(weights, X), nets.gates(weights, X)
    size = float(f.abs().max())
    permuted, rescaled = list(weights), list(weights)
    for layer in range(1, len(weights)):
        n = widths[layer]
        permuted = permute_hidden(permuted, layer, torch.randperm(n, generator=gen))
        scales = 10.0 ** (2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1)
        for unit, c in enumerate(scales.tolist()):
            rescaled = rescale_unit(rescaled, layer, unit, c)
    flipped = [w.clone() for w in weights]
    flipped[0][0] = -weights[0][0]
    J = path_couplings(weights, paths)

    def changed_gates(w):
        return int(sum((a != b).sum() for a, b in zip(nets.gates(w, X), gates, strict=True)))

    return {
        "f, permuted": float((nets.forward(permuted, X) - f).abs().max()) / size,
        "f, rescaled": float((nets.forward(rescaled, X) - f).abs().max()) / size,
        "J, rescaled": float(((path_couplings(rescaled, paths) - J) / J).abs().max()),
        "gates changed, rescaled": changed_gates(rescaled),
        "f, one unit sign-flipped": float((nets.forward(flipped, X) - f).abs().max()) / size,
        "gates changed, sign-flipped": changed_gates(flipped),
    }
