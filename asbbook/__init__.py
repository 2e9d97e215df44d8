"""asbbook: the helper package of the book *Complexity from Adaptive-Symmetries Breaking*.

One module per concept of the book (``boltzmann``, ``circuits``, ``symmetry``,
``assembly``, ``capacity``), each holding the sympy derivation next to its torch
counterpart, plus infrastructure (``nets``, ``data``, ``ensemble``, ``sweep``,
``params``, ``plotting``, ``notebooks``, ``cli``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asbbook")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
