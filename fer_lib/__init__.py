"""fer_lib: a reproduction of Norhikmah, Lutfhi and Rumini (2022), batch
normalization and dropout in a CNN for five-class facial expressions on FER-2013.

Modules, one concern each: ``paper`` (the paper's numbers), ``data`` (FER-2013),
``models`` (Models A and B), ``train`` (the resumable runner), ``cli``.
"""

__version__ = "0.1.0"
