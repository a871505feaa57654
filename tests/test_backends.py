from pathlib import Path

import pytest
import torch

import asrec
from asrec import backends
from asrec.backends import GPU_VERIFIED, dispatch

OPS = backends._OPS

X = torch.zeros(2, 7, 8)
FILTER_ARGS = (X, torch.tensor(0.8), torch.ones(8), torch.zeros(8), 1e-12)


def test_default_is_auto_and_auto_runs_the_reference_on_cpu(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert backends.selected_backend() == "auto"
    assert dispatch("frequency_filter", X.device, *FILTER_ARGS) is asrec.reference.frequency_filter_ref
    assert dispatch("residual_norm", X.device, X, X, torch.ones(8), torch.zeros(8), 1e-5) \
        is asrec.reference.residual_norm_ref


def test_auto_on_cuda_takes_triton_only_for_calls_the_kernels_take(monkeypatch):
    if backends.triton_missing_reason() is not None:
        pytest.skip("needs triton")
    monkeypatch.setitem(GPU_VERIFIED, ("frequency_filter", "triton"), "a run")  # as once the GPU check passes
    cuda = torch.device("cuda")
    chosen = dispatch("frequency_filter", cuda, *FILTER_ARGS)
    assert chosen is OPS["frequency_filter"]["triton"].run
    too_wide = (torch.zeros(1, 200, 256),) + FILTER_ARGS[1:2] + (torch.ones(256), torch.zeros(256), 1e-12)
    assert dispatch("frequency_filter", cuda, *too_wide) is asrec.reference.frequency_filter_ref
    as_double = tuple(a.double() if torch.is_tensor(a) else a for a in FILTER_ARGS)
    assert dispatch("frequency_filter", cuda, *as_double) is asrec.reference.frequency_filter_ref


def test_auto_leaves_kernels_not_yet_run_on_a_gpu_to_explicit_requests():
    if backends.triton_missing_reason() is not None:
        pytest.skip("needs triton")
    x = torch.zeros(2, 7, 8)
    args = (x, x, torch.ones(8), torch.zeros(8), 1e-5)
    assert ("residual_norm", "triton") not in GPU_VERIFIED
    assert dispatch("residual_norm", torch.device("cuda"), *args) is asrec.reference.residual_norm_ref
    with asrec.use_backend("triton"):
        assert dispatch("residual_norm", torch.device("cuda"), *args) is OPS["residual_norm"]["triton"].run
    assert "residual_norm            cuda  -> reference  (triton kernel not yet run on a GPU: ask for it by name)" \
        in backends.describe()


def test_explicit_triton_on_cpu_outside_the_interpreter_says_why(monkeypatch):
    if backends.triton_missing_reason() is not None:
        pytest.skip("needs triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with asrec.use_backend("triton"), pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        asrec.ops.frequency_filter(*FILTER_ARGS)


def test_explicit_triton_without_triton_says_how_to_get_it(monkeypatch):
    backends._triton_missing_reason.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "triton", None)
    try:
        with asrec.use_backend("triton"), pytest.raises(ValueError, match="pip install triton"):
            asrec.ops.frequency_filter(*FILTER_ARGS)
        with asrec.use_backend("auto"):  # auto runs the reference and says so in describe()
            asrec.ops.frequency_filter(*FILTER_ARGS)
            assert "triton: absent" in backends.describe()
    finally:
        backends._triton_missing_reason.cache_clear()


def test_context_manager_nests_and_restores(monkeypatch):
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    with asrec.use_backend("reference"):
        assert backends.selected_backend() == "reference"
        with asrec.use_backend("auto"):
            assert backends.selected_backend() == "auto"
        assert backends.selected_backend() == "reference"
    assert backends.selected_backend() == "auto"


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "triton")
    assert backends.selected_backend() == "triton"
    monkeypatch.setenv(backends.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"ASREC_BACKEND: unknown asrec backend 'fast'; this build has "
                                         r"reference, triton, cuda, auto"):
        backends.selected_backend()


def test_cuda_backend_without_the_extension_says_how_to_build_it():
    import importlib.util

    if importlib.util.find_spec("asrec._C") is not None:
        pytest.skip("the CUDA extension is built here")
    assert "asrec._C is not built" in backends.cuda_missing_reason()
    with asrec.use_backend("cuda"), pytest.raises(ValueError, match=r"frequency_filter on the 'cuda' backend: "
                                                                    r"the CUDA extension asrec._C is not built.*"
                                                                    r"ASREC_FORCE_CUDA_BUILD=1"):
        asrec.ops.frequency_filter(*FILTER_ARGS)
    with asrec.use_backend("cuda"):  # ops with no CUDA kernel run the reference
        assert dispatch("residual_norm", X.device, X, X, torch.ones(8), torch.zeros(8), 1e-5) \
            is asrec.reference.residual_norm_ref
        assert "residual_norm            cpu   -> reference  (no cuda kernel for this op)" in backends.describe()
    assert "cuda: absent: the CUDA extension asrec._C is not built" in backends.describe()


def test_cuda_extension_that_does_not_load_says_so(monkeypatch):
    from asrec import _cuda_extension

    def broken(name):
        raise ImportError("undefined symbol: _ZN3c10")
    _cuda_extension.load.cache_clear()
    monkeypatch.setattr(_cuda_extension.importlib, "import_module", broken)
    try:
        assert _cuda_extension.load() == ("the CUDA extension asrec._C does not load (undefined symbol: _ZN3c10); "
                                          "rebuild it against this torch")
    finally:
        _cuda_extension.load.cache_clear()


def test_cuda_backend_on_cpu_tensors_says_it_needs_cuda_tensors(monkeypatch):
    monkeypatch.setattr(backends, "cuda_missing_reason", lambda: None)  # as if built
    with asrec.use_backend("cuda"), pytest.raises(ValueError, match="the CUDA kernels run CUDA tensors; got cpu"):
        asrec.ops.frequency_filter(*FILTER_ARGS)


def test_auto_leaves_unverified_cuda_kernels_to_explicit_requests(monkeypatch):
    monkeypatch.setattr(backends, "cuda_missing_reason", lambda: None)
    monkeypatch.setattr(backends, "triton_missing_reason", lambda: "absent for this test")
    assert ("frequency_filter", "cuda") not in GPU_VERIFIED
    assert dispatch("frequency_filter", torch.device("cuda"), *FILTER_ARGS) is asrec.reference.frequency_filter_ref
    with asrec.use_backend("cuda"):
        assert dispatch("frequency_filter", torch.device("cuda"), *FILTER_ARGS) is OPS["frequency_filter"]["cuda"].run


@pytest.mark.parametrize("name", ["fast", 3])
def test_unknown_backends_say_which_exist(name):
    with pytest.raises(ValueError, match="this build has reference, triton, cuda, auto"):
        with asrec.use_backend(name):
            pass


def test_describe_lists_every_op_and_the_compositions():
    text = backends.describe()
    for op in list(OPS) + ["seasonal_branch", "dynamic_branch", "feed_forward", "hybrid_layer"]:
        assert f"{op}" in text
    assert "hybrid_layer             all   -> composition of the ops above, each on its own backend" in text
    assert ("cuda: available" if backends.cuda_missing_reason() is None else "cuda: absent") in text


def test_model_runs_under_explicit_reference():
    model = asrec.ASRecModel(n_items=10, max_seq_length=4, hidden_size=8, n_heads=2, inner_size=8).eval()
    items, lengths = torch.tensor([[1, 2, 0, 0]]), torch.tensor([2])
    with asrec.use_backend("reference"):
        a = model(items, lengths)
    torch.testing.assert_close(a, model(items, lengths))


def test_plan_says_why_the_reference_runs():
    """One answer for dispatch and describe: the plan names the backend and, when the
    reference runs, why."""
    assert backends.plan("frequency_filter", "cpu", selection="auto").reason == "auto runs the reference on cpu tensors"
    chosen = backends.plan("residual_norm", "cpu", selection="cuda")
    assert (chosen.backend, chosen.reason) == ("reference", "no cuda kernel for this op")
    assert backends.plan("residual_norm", "cpu", selection="reference") == backends.Plan(
        "reference", asrec.reference.residual_norm_ref)


def test_every_verified_kernel_is_registered_and_names_its_run():
    for (op, backend), run in GPU_VERIFIED.items():
        assert backend in OPS[op], (op, backend)
        recorded = (Path(__file__).parents[1] / "BENCHMARKS.md").read_text()
        assert "NVIDIA" in run and f"### {run.split(' (')[0]}" in recorded, run


def test_ops_exports_only_public_ops():
    import inspect

    for name in asrec.ops.__all__:
        function = getattr(asrec.ops, name)
        assert inspect.isfunction(function) and function.__doc__, name
    assert not hasattr(asrec.ops, "OPS") and not hasattr(asrec.ops, "COMPOSITES")
