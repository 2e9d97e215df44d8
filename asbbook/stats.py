"""Statistics shared by every chapter: one estimate type, its estimators, entropies and fits.

Every Monte-Carlo number of the book is an :class:`Estimate` -- a value with its standard
error -- produced by the estimators below, so that a comparison table (``asbbook.report``) can
always state how far a measurement lies from its prediction in units of its own uncertainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from asbbook import validation


class Estimate(NamedTuple):
    """A Monte-Carlo estimate and its standard error (floats, or tensors of one shape).

    A named tuple, so ``value, stderr = mean_with_stderr(x)`` unpacks as well.
    """

    value: torch.Tensor | float
    stderr: torch.Tensor | float

    def item(self) -> Estimate:
        """The same estimate with 0-d tensors converted to Python floats."""
        return Estimate(float(self.value), float(self.stderr))


def _samples(samples, dim: int, minimum: int) -> torch.Tensor:
    samples = validation.as_float_tensor("samples", samples, min_ndim=1)
    if not -samples.ndim <= dim < samples.ndim:
        raise ValueError(f"dim must index one of the {samples.ndim} dimensions, got {dim}")
    if samples.shape[dim] < minimum:
        raise ValueError(f"samples need at least {minimum} entries along dim {dim}")
    return samples


def mean_with_stderr(samples, dim: int = 0) -> Estimate:
    """Sample mean over ``dim`` and its standard error ``s / sqrt(K)`` (``s`` unbiased)."""
    samples = _samples(samples, dim, 2)
    k = samples.shape[dim]
    return Estimate(samples.mean(dim=dim), samples.std(dim=dim, correction=1) / math.sqrt(k))


def _central_moments(samples: torch.Tensor, dim: int):
    k = samples.shape[dim]
    mean = samples.mean(dim=dim, keepdim=True)
    d = samples - mean
    m2 = d.square().mean(dim=dim)
    m3 = (d**3).mean(dim=dim)
    m4 = (d**4).mean(dim=dim)
    return k, mean.squeeze(dim), m2 * k / (k - 1), m3, m4


def variance_with_stderr(samples, dim: int = 0) -> Estimate:
    """Unbiased sample variance ``s^2`` over ``dim`` and its standard error for any distribution
    with a finite fourth moment: ``Var s^2 = mu_4/K - sigma^4 (K-3)/(K(K-1))``, with ``mu_4`` and
    ``sigma^2`` replaced by their sample estimates (for Gaussian samples
    ``~ sigma^2 sqrt(2/(K-1))``; e.g. Kendall & Stuart, *The Advanced Theory of Statistics*)."""
    samples = _samples(samples, dim, 4)
    k, _, var, _, m4 = _central_moments(samples, dim)
    se2 = m4 / k - var.square() * (k - 3) / (k * (k - 1))
    return Estimate(var, torch.sqrt(torch.clamp(se2, min=0)))


def cv_with_stderr(samples, dim: int = 0) -> Estimate:
    """Coefficient of variation ``s / mean`` over ``dim`` with its delta-method standard error
    ``Var cv ~ (1/K) [s^4/m^4 + (mu_4 - s^4)/(4 m^2 s^2) - mu_3/m^3]`` (from the joint asymptotic
    covariance of the sample mean and variance)."""
    samples = _samples(samples, dim, 4)
    k, m, var, m3, m4 = _central_moments(samples, dim)
    cv = torch.sqrt(var) / m
    # constant samples have cv = 0 exactly; guard the 0/0 of the delta method there
    safe_var = torch.where(var > 0, var, torch.ones_like(var))
    se2 = (var.square() / m**4 + (m4 - var.square()) / (4 * m**2 * safe_var) - m3 / m**3) / k
    se2 = torch.where(var > 0, se2, torch.zeros_like(se2))
    return Estimate(cv, torch.sqrt(torch.clamp(se2, min=0)))


class SampleVarianceLaw(NamedTuple):
    """Mean, standard deviation and skewness of an unbiased sample variance under a known law."""

    mean: float
    stderr: float
    skewness: float


def sample_variance_law(cumulants, n_samples: int) -> SampleVarianceLaw:
    """The law of the unbiased sample variance ``s^2`` of ``n`` iid draws whose cumulants
    ``k_2, ..., k_6`` are ``cumulants`` (Fisher's k-statistic ``k_2``; Kendall & Stuart, *The
    Advanced Theory of Statistics* vol. 1, ch. 12), exact at finite ``n``:

        E s^2 = k_2,   Var s^2 = k_4/n + 2 k_2^2/(n-1),
        k_3(s^2) = k_6/n^2 + 12 k_4 k_2/(n(n-1)) + 4(n-2) k_3^2/(n(n-1)^2) + 8 k_2^3/(n-1)^2.

    A ``z``-test of ``s^2`` is trustworthy only where the skewness is small: heavy-tailed draws
    make the far tail of ``s^2`` heavier than the normal one."""
    k = np.asarray(cumulants, dtype=np.float64).ravel()
    if k.size != 5 or not np.isfinite(k).all() or k[0] <= 0:
        raise ValueError(f"cumulants must be k_2..k_6 (five finite numbers, k_2 > 0), got {k}")
    n = validation.check_int("n_samples", n_samples, minimum=4)
    k2, k3, k4, _, k6 = (float(v) for v in k)
    var = k4 / n + 2 * k2**2 / (n - 1)
    if var <= 0:
        raise ValueError(f"the cumulants give a non-positive variance of s^2 ({var})")
    third = (
        k6 / n**2
        + 12 * k4 * k2 / (n * (n - 1))
        + 4 * (n - 2) * k3**2 / (n * (n - 1) ** 2)
        + 8 * k2**3 / (n - 1) ** 2
    )
    return SampleVarianceLaw(k2, math.sqrt(var), third / var**1.5)


def proportion_with_stderr(successes, trials) -> Estimate:
    """A binomial proportion ``k / n`` with its plug-in standard error ``sqrt(p (1-p) / n)``.

    For tests at small counts use the exact binomial law instead (``asbbook.report``)."""
    k = validation.check_int("successes", successes, minimum=0)
    n = validation.check_int("trials", trials, minimum=1)
    if k > n:
        raise ValueError(f"successes must be at most trials={n}, got {k}")
    p = k / n
    return Estimate(p, math.sqrt(p * (1 - p) / n))


# --------------------------------------------------------------------------------------------
# Entropies
# --------------------------------------------------------------------------------------------


def binary_entropy_bits(p) -> torch.Tensor:
    """``H_2(p) = -p log2 p - (1-p) log2(1-p)`` elementwise, with ``0 log 0 = 0``; 1 bit at
    ``p = 1/2`` and 0 at ``p in {0, 1}`` (Cover & Thomas 2006, eq. 2.5)."""
    p = validation.as_float_tensor("p", p)
    if not bool(torch.all((p >= 0) & (p <= 1))):
        raise ValueError("p must lie in [0, 1]")
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)) / math.log(2.0)


# --------------------------------------------------------------------------------------------
# Weighted least squares
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearFit:
    """``y ~ A beta`` by weighted least squares, from :func:`weighted_least_squares`."""

    coefficients: np.ndarray  # beta
    covariance: np.ndarray  # (A^T W A)^{-1}, times the Birge ratio when that exceeds 1
    chi2: float  # sum_i (y_i - (A beta)_i)^2 / se_i^2
    dof: int  # len(y) - len(beta)

    @property
    def stderr(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))


def weighted_least_squares(design, y, se, *, birge: bool = True) -> LinearFit:
    """Minimise ``sum_i ((y_i - (A beta)_i) / se_i)^2`` for the design matrix ``A``.

    The covariance of ``beta`` is ``(A^T W A)^{-1}`` with ``W = diag(1/se^2)``; with ``birge``
    it is multiplied by ``chi2 / dof`` when that exceeds 1 (Birge 1932: the scatter is larger
    than the error bars claim). Returns a :class:`LinearFit`."""
    A = np.asarray(design, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    se = np.asarray(se, dtype=np.float64).ravel()
    if A.ndim != 2 or A.shape[0] != y.size or se.size != y.size:
        raise ValueError(f"design {A.shape}, y {y.shape} and se {se.shape} do not match")
    if not (np.isfinite(A).all() and np.isfinite(y).all() and np.isfinite(se).all()):
        raise ValueError("design, y and se must be finite")
    if not (se > 0).all():
        raise ValueError("se must be positive")
    if np.linalg.matrix_rank(A) < A.shape[1]:
        raise ValueError("the design matrix is rank deficient: too few distinct points")
    w = 1.0 / se**2
    try:
        cov = np.linalg.inv(A.T @ (w[:, None] * A))
    except np.linalg.LinAlgError:
        raise ValueError(
            f"the weighted normal equations are singular: the errors span {se.min():.3g} to "
            f"{se.max():.3g}, too wide a range for the points to constrain every coefficient"
        ) from None
    beta = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - A @ beta) ** 2))
    dof = int(y.size - A.shape[1])
    if birge and dof > 0 and chi2 / dof > 1:
        cov = cov * (chi2 / dof)
    return LinearFit(beta, cov, chi2, dof)
