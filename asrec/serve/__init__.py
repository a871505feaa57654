"""Serving a trained model: rebuild it from a run folder (``load_run``) and export its
recommendations as a standalone AOTInductor package (``export_recommender``)."""

from .export import export_recommender
from .run_loading import load_run

__all__ = ["export_recommender", "load_run"]
