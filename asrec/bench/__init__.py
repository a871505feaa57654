"""``asrec bench``: throughput of the model and of each op under every implementation."""

from .runner import format_table, run_benchmark, write_json, write_plot
from .settings import SETTINGS

__all__ = ["SETTINGS", "format_table", "run_benchmark", "write_json", "write_plot"]
