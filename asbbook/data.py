"""Datasets of the book. Nothing is downloaded: ``load_digits`` ships inside scikit-learn.

All loaders are seeded and return float64 torch tensors ``X`` of shape ``(P, n_0)`` and labels
``y`` in ``{-1, +1}`` of shape ``(P,)``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


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
    independent seed-derived permutation (Zhang et al. 2017's randomisation test).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    X = X - X.mean(axis=1, keepdims=True)
    X = X / np.sqrt((X**2).mean(axis=1, keepdims=True))
    y = np.where(np.isin(digits.target, positive_digits), 1.0, -1.0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    if n_examples is not None:
        if not 1 <= n_examples <= len(y):
            raise ValueError(f"n_examples must be between 1 and {len(y)}, got {n_examples}")
        order = order[:n_examples]
    X, y = X[order], y[order]
    if shuffle_labels:
        y = y[np.random.default_rng(seed + 1_000_003).permutation(len(y))]
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
    if n_examples < 1 or dim < 1:
        raise ValueError(f"n_examples and dim must be >= 1, got {n_examples}, {dim}")
    gen = torch.Generator().manual_seed(seed)
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
