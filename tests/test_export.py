"""``asrec export`` and ``asrec.serve.export_recommender``: an AOTInductor package of a trained
run's eval forward + top-k that equals the eager model, loads without asrec, and keeps the
id checks; tracing leaves no fake tensor in the constant caches.

AOTInductor compiles C++ (about a minute on 2 cores), so the module compiles ONE package
(the ``package`` fixture) from a tiny run trained with ``asrec train``; the other tests
trace with ``torch.export`` alone, which takes seconds."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from asrec.cli import main
from asrec.model import ASRecModel
from asrec.reference.frequency_filter import _DFT_MATRICES
from asrec.serve import export_recommender, load_run
from asrec.serve.export import exported_program

K = 5
TINY_RUN = ["--dataset", "synthetic", "--synthetic-users", "40", "--synthetic-items", "30", "--preset", "ml-100k",
            "--hidden-size", "16", "--inner-size", "32", "--n-layers", "1", "--max-seq-length", "100",
            "--epochs", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("export") / "run")
    assert main(["train", *TINY_RUN, "--output", folder]) == 0
    return folder


@pytest.fixture(scope="module")
def package(run):
    path = os.path.join(os.path.dirname(run), "model.pt2")
    assert main(["export", run, path, "--k", str(K)]) == 0
    return path


def _histories(batch: int, n_items: int, max_seq_length: int, seed: int) -> tuple:
    """Left-aligned random histories of lengths 1..N: (item_seq (B, N), item_seq_len (B,))."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_seq_length + 1, (batch,), generator=generator)
    items = torch.randint(1, n_items, (batch, max_seq_length), generator=generator)
    items[torch.arange(max_seq_length) >= lengths[:, None]] = 0
    return items, lengths


def _assert_same_recommendations(got: tuple, expected: tuple) -> None:
    # Inductor fuses and reorders float arithmetic: scores agree to float32 rounding, ids exactly
    assert got[1].dtype == torch.int64 and got[0].dtype == torch.float32
    assert torch.equal(got[1], expected[1])
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)


def test_package_equals_the_eager_model_for_two_batch_sizes(run, package):
    model, info = load_run(run)
    assert info["model_config"]["filter_scope"] == "batch"
    compiled = torch._inductor.aoti_load_package(package)
    assert compiled.get_metadata()["asrec.k"] == str(K)
    for batch, seed in ((3, 0), (17, 1)):
        item_seq, item_seq_len = _histories(batch, model.n_items, model.max_seq_length, seed)
        got = compiled(item_seq, item_seq_len)
        expected = model.recommend(item_seq, item_seq_len, K)
        assert got[1].shape == (batch, K)
        _assert_same_recommendations(got, expected)
        assert bool((got[1] >= 1).all())  # never the padding item
        assert len({tuple(row) for row in expected[1].tolist()}) > 1  # the rows differ: a test that can fail


def test_package_loads_without_asrec(package, run, tmp_path):
    model, _ = load_run(run)
    item_seq, item_seq_len = _histories(4, model.n_items, model.max_seq_length, 2)
    torch.save({"item_seq": item_seq, "item_seq_len": item_seq_len}, tmp_path / "inputs.pt")
    script = textwrap.dedent(f"""
        import sys

        class RefuseAsrec:  # the installed asrec (site-packages) is hidden too, not only the checkout
            def find_spec(self, name, path=None, target=None):
                if name == "asrec" or name.startswith("asrec."):
                    raise ImportError("asrec may not be imported here")
                return None

        sys.meta_path.insert(0, RefuseAsrec())
        import torch
        inputs = torch.load("inputs.pt")
        compiled = torch._inductor.aoti_load_package({package!r})
        scores, ids = compiled(inputs["item_seq"], inputs["item_seq_len"])
        torch.save({{"scores": scores, "ids": ids}}, "outputs.pt")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "asrec"))
    """)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    outputs = torch.load(tmp_path / "outputs.pt")
    _assert_same_recommendations((outputs["scores"], outputs["ids"]), model.recommend(item_seq, item_seq_len, K))


def test_package_rejects_ids_and_lengths_out_of_range(run, package):
    model, _ = load_run(run)
    compiled = torch._inductor.aoti_load_package(package)
    item_seq, item_seq_len = _histories(2, model.n_items, model.max_seq_length, 3)
    bad_ids = item_seq.clone()
    bad_ids[0, 0] = model.n_items
    with pytest.raises(RuntimeError):
        compiled(bad_ids, item_seq_len)
    with pytest.raises(RuntimeError):
        compiled(item_seq, torch.tensor([0, 1]))


def _small_model(max_seq_length: int, filter_scope: str = "batch") -> ASRecModel:
    # initializer_range 0.3: an untrained model whose rows rank items differently
    return ASRecModel(n_items=40, max_seq_length=max_seq_length, hidden_size=16, n_layers=1, n_heads=2,
                      inner_size=32, initializer_range=0.3, filter_scope=filter_scope).eval()


def test_export_as_first_call_leaves_eager_calls_real():
    _DFT_MATRICES.clear()
    model = _small_model(max_seq_length=11)  # a length no other test caches
    item_seq, item_seq_len = _histories(5, model.n_items, model.max_seq_length, 4)
    program = exported_program(model, K)  # the model's first call: the DFT matrices are built under tracing
    after = model.recommend(item_seq, item_seq_len, K)
    assert all(type(t) is torch.Tensor for t in after)
    assert all(type(t) is torch.Tensor for entry in _DFT_MATRICES.entries.values() for t in entry)
    _DFT_MATRICES.clear()
    expected = model.recommend(item_seq, item_seq_len, K)
    assert torch.equal(after[0], expected[0]) and torch.equal(after[1], expected[1])
    # the traced graph run eagerly (no Inductor) is the same function
    _assert_same_recommendations(program.module()(item_seq, item_seq_len), expected)


def test_fullgraph_compile_of_a_default_model():
    model = _small_model(max_seq_length=8)
    item_seq, item_seq_len = _histories(4, model.n_items, model.max_seq_length, 5)
    compiled = torch.compile(lambda s, n: model.recommend(s, n, K), fullgraph=True, backend="eager")
    got = compiled(item_seq, item_seq_len)
    expected = model.recommend(item_seq, item_seq_len, K)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_filter_scope_batch_couples_rows_and_sequence_does_not():
    """The exported graph computes eager's function for the same batch; under the batch scope
    a row's recommendations depend on the rest of its batch, under the sequence scope not."""
    item_seq, item_seq_len = _histories(6, 40, 9, 6)
    for scope in ("batch", "sequence"):
        torch.manual_seed(0)
        model = _small_model(max_seq_length=9, filter_scope=scope)
        graph = exported_program(model, 39).module()
        whole = graph(item_seq, item_seq_len)
        _assert_same_recommendations(whole, model.recommend(item_seq, item_seq_len, 39))
        alone = graph(item_seq[:2], item_seq_len[:2])
        _assert_same_recommendations(alone, model.recommend(item_seq[:2], item_seq_len[:2], 39))
        same = torch.equal(alone[1], whole[1][:2]) and torch.allclose(alone[0], whole[0][:2], atol=1e-6)
        assert same == (scope == "sequence"), scope


def _fails(argv, capsys, status: int, message: str) -> None:
    if status == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(["export", *argv])
        code = exit_info.value.code
    else:
        code = main(["export", *argv])
    assert code == status
    assert message in capsys.readouterr().err


def test_errors_name_the_bad_argument(run, tmp_path, capsys):
    out = str(tmp_path / "x.pt2")
    _fails([str(tmp_path), out], capsys, 1, "is not a run folder of asrec train: it has no config.json and no best.pt")
    _fails([str(tmp_path / "absent"), out], capsys, 1, "is not a folder")
    n_real = load_run(run)[0].n_items - 1
    _fails([run, out, "--k", str(n_real + 1)], capsys, 1, f"--k: the run's catalog has {n_real} items")
    _fails([run, out, "--k", "0"], capsys, 2, "--k: expected a positive int")
    _fails([run, str(tmp_path / "x.zip")], capsys, 2, "OUT: expected a file name ending in .pt2")
    (tmp_path / "taken.pt2").write_text("")
    _fails([run, str(tmp_path / "taken.pt2")], capsys, 1, "exists (remove it")
    if not torch.cuda.is_available():
        _fails([run, out, "--device", "cuda"], capsys, 1, "--device cuda: torch sees no CUDA device")
    assert not os.path.exists(out)


def test_library_errors(tmp_path):
    model = _small_model(max_seq_length=8)
    with pytest.raises(ValueError, match=r"k: expected an int in \[1, 39\]"):
        export_recommender(model, str(tmp_path / "m.pt2"), 40)
    with pytest.raises(ValueError, match="path: expected a file name ending in .pt2"):
        export_recommender(model, str(tmp_path / "m.zip"), 3)
    with pytest.raises(ValueError, match="device: expected one of cpu, cuda"):
        export_recommender(model, str(tmp_path / "m.pt2"), 3, device="tpu")
    with pytest.raises(TypeError, match="model: expected an asrec.ASRecModel"):
        export_recommender(torch.nn.Linear(2, 2), str(tmp_path / "m.pt2"), 3)
