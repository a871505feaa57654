"""Baselines the library is measured and tested against (not used by the fast path)."""

from .published import PublishedASRec

__all__ = ["PublishedASRec"]
