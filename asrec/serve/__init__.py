"""Serving a trained run: top-k recommendations with the dataset's own tokens (``asrec
recommend``) and the run's recommender exported as a standalone AOTInductor package
(``asrec export``)."""

from .export import export_recommender
from .recommend import latest_histories, recommend_batch, recommend_users
from .run import load_run, load_run_data, load_run_model, read_config
from .run_data import RunData, read_run_data, write_run_data

__all__ = ["RunData", "export_recommender", "latest_histories", "load_run", "load_run_data", "load_run_model",
           "read_config", "read_run_data", "recommend_batch", "recommend_users", "write_run_data"]
