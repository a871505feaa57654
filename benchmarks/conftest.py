"""pytest-benchmark suite for the CPU path: ``pytest benchmarks/ --benchmark-only``.

Kept out of the normal test run (``testpaths = tests``). Shapes default to the ml-100k
setting at batch 32 so the suite finishes in minutes on 2 cores;
``ASREC_BENCH_BATCH=256`` gives the published batch.
"""

import os

import pytest
import torch

from asrec.bench.cases import build_cases
from asrec.bench.settings import SETTINGS

BATCH = int(os.environ.get("ASREC_BENCH_BATCH", "32"))


@pytest.fixture(scope="session", params=list(SETTINGS))
def cases(request):
    built = build_cases(request.param, SETTINGS[request.param], BATCH, torch.device("cpu"), torch.float32,
                        compile_reference=False)
    return {(c.target, c.mode): c for c in built}
