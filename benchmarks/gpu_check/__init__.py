"""The GPU check: ``bash benchmarks/gpu_check.sh OUT [--budget SECONDS]`` (driver.py)."""
