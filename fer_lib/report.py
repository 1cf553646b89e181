"""Transitional: chapters 6 and 7 still import ``glue``, ``fmt`` and ``colab_badge`` from here.

They live in :mod:`fer_lib.book` now (the rest of the old module is in :mod:`fer_lib.compare`);
delete this module once those chapters import :mod:`fer_lib.book`.
"""

from fer_lib.book import colab_badge, fmt, glue

__all__ = ["colab_badge", "fmt", "glue"]
