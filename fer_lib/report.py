"""Transitional: chapter 7 still imports ``glue`` and ``colab_badge`` from here.

They live in :mod:`fer_lib.book` now (the rest of the old module is in :mod:`fer_lib.compare`);
delete this module once it imports :mod:`fer_lib.book`.
"""

from fer_lib.book import colab_badge, glue

__all__ = ["colab_badge", "glue"]
