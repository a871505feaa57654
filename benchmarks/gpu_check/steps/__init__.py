"""The steps of the GPU check, one module each, run by the driver as subprocesses
(``python -m benchmarks.gpu_check.steps.<name>``; see ``benchmarks.gpu_check.stepio``)."""
