"""Datasets of the book, and the one function every random stream is seeded through.

Nothing is downloaded: ``load_digits`` ships inside scikit-learn. All loaders are seeded and
return float64 torch tensors ``X`` of shape ``(P, n_0)`` and labels ``y`` in ``{-1, +1}`` of
shape ``(P,)``.

Randomness comes only from an integer seed. A stream that needs its own seed (a member of an
ensemble, the dataset of a sweep cell, a shuffle of labels) gets it from :func:`derive_seed`,
which hashes the base seed with named labels, so streams never overlap by accident (as
``seed + 1`` for one purpose and ``seed + 1`` for another would) and a stream does not change
when unrelated streams are added.
"""

from __future__ import annotations

import hashlib
import json
import numbers

import numpy as np
import torch

from asbbook import validation

N_DIGITS = 1797  # images in scikit-learn's load_digits


def _label(name: str, value):
    """A label value as canonical JSON material: ints, strings, floats (by ``repr``) and
    sequences of them."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"seed label {name} must not be a bool")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, list | tuple):
        return [_label(name, v) for v in value]
    raise TypeError(f"seed label {name} must be an int, str, float or list, got {value!r}")


def derive_seed(seed, **labels) -> int:
    """A 63-bit seed for the random stream named by ``labels`` under the base ``seed``.

    The first 8 bytes (big-endian, shifted right by one bit) of the SHA-256 of the canonical
    JSON ``{"base_seed": seed, **labels}`` (sorted keys, no spaces; floats by ``repr``).
    It depends only on its arguments: a member's weights, or a cell's data, do not change when
    the run around it does.
    """
    seed = validation.check_seed("seed", seed)
    if "base_seed" in labels:
        raise ValueError("base_seed is reserved for the base seed")
    payload = {"base_seed": seed, **{k: _label(k, v) for k, v in labels.items()}}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def torch_generator(seed, **labels) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` (or ``seed`` itself when no
    labels are given). Draw on the CPU and move the result, so every device sees the same
    numbers."""
    value = derive_seed(seed, **labels) if labels else validation.check_seed("seed", seed)
    return torch.Generator().manual_seed(value)


def load_digits_binary(
    n_examples: int | None = None,
    *,
    positive_digits: tuple[int, ...] = (0, 1, 2, 3, 4),
    shuffle_labels: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits (1797 images) as a binary task.

    Label ``+1`` for a digit in ``positive_digits`` (default: 0-4 against 5-9), else ``-1``.
    Pixels are scaled to [0, 1], then each image is centred and scaled to unit mean square,
    so ``mean(x^2) = 1`` and the variance map of chapter 3 starts at ``q^1 = sigma2``.
    A seeded permutation picks ``n_examples``; ``shuffle_labels`` permutes the labels with an
    independent permutation seeded by :func:`derive_seed` (Zhang et al. 2017's randomisation
    test).
    """
    from sklearn.datasets import load_digits

    positive_digits = tuple(positive_digits)
    digits_set = {
        validation.check_int("positive_digits", d, minimum=0, maximum=9) for d in positive_digits
    }
    if not 1 <= len(digits_set) <= 9:
        raise ValueError(
            f"positive_digits must name between 1 and 9 distinct digits 0-9, got {positive_digits}"
        )
    if n_examples is not None:
        n_examples = validation.check_int("n_examples", n_examples, minimum=1, maximum=N_DIGITS)
    seed = validation.check_seed("seed", seed)
    validation.check_float_dtype(dtype)
    device = validation.resolve_device(device)
    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    X = X - X.mean(axis=1, keepdims=True)
    X = X / np.sqrt((X**2).mean(axis=1, keepdims=True))
    y = np.where(np.isin(digits.target, positive_digits), 1.0, -1.0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    if n_examples is not None:
        order = order[:n_examples]
    X, y = X[order], y[order]
    if shuffle_labels:
        shuffle_seed = derive_seed(seed, purpose="digits-label-shuffle")
        y = y[np.random.default_rng(shuffle_seed).permutation(len(y))]
    return (
        torch.as_tensor(X, dtype=dtype, device=device),
        torch.as_tensor(y, dtype=dtype, device=device),
    )


def gaussian_patterns(
    n_examples: int,
    dim: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``P`` i.i.d. standard Gaussian patterns in ``R^dim`` with i.i.d. uniform labels in ``{-1,+1}``
    (the random-dichotomy setting of Cover 1965 and Gardner 1988)."""
    n_examples = validation.check_int("n_examples", n_examples, minimum=1)
    dim = validation.check_int("dim", dim, minimum=1)
    validation.check_memory("n_examples * dim", 8.0 * n_examples * (dim + 1))
    validation.check_float_dtype(dtype)
    device = validation.resolve_device(device)
    gen = torch.Generator().manual_seed(validation.check_seed("seed", seed))
    X = torch.randn(n_examples, dim, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (n_examples,), generator=gen).to(torch.float64) * 2 - 1
    return X.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)


def fingerprint(*arrays) -> str:
    """A short SHA-256 of the arrays' dtypes, shapes and bytes (used as a cache-key component)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        a = np.ascontiguousarray(a)
        digest.update(str(a.dtype).encode())
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]
