"""CUDA-graphed training steps and evaluation (asrec.graphs), on a GPU.

A replayed step equals the eager step for the same RNG state; replays draw fresh dropout
masks; 20 graphed steps track 20 eager ones; an uncaptured batch size runs eagerly; a
step makes no host synchronisation (torch.cuda.set_sync_debug_mode("error")); the model
compiles with mode="reduce-overhead" without skipping cudagraphs. These need CUDA (``gpu``
marker); off CUDA the step runs eagerly (tested here on the CPU), and the CPU audit of host
work is tests/test_host_sync.py.
"""

import copy

import pytest
import torch

import asrec
from asrec.graphs import GraphedScores, GraphedTrainStep

CONFIG = dict(n_items=300, max_seq_length=50, hidden_size=64, n_heads=2, inner_size=64, check_values=False)
BACKENDS = ["triton", "reference"]


def _batch(batch=32, seq_len=50, n_items=300, seed=0, device="cuda"):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, seq_len + 1, (batch,), generator=generator)
    items = torch.randint(1, n_items, (batch, seq_len), generator=generator)
    items = items * (torch.arange(seq_len)[None, :] < lengths[:, None])
    targets = torch.randint(1, n_items, (batch,), generator=generator)
    return items.to(device), lengths.to(device), targets.to(device)


def _model_and_optimizer(lr=1e-3, device="cuda", capturable=True):
    torch.manual_seed(0)
    model = asrec.ASRecModel(**CONFIG).to(device).train()
    return model, torch.optim.Adam(model.parameters(), lr=lr, capturable=capturable)


def test_off_cuda_a_step_is_the_plain_eager_step():
    """On the CPU nothing is captured: the step is zero_grad + loss + backward + optimizer step."""
    model, optimizer = _model_and_optimizer(device="cpu", capturable=False)
    twin = copy.deepcopy(model)
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    batch = _batch(4, device="cpu")
    with asrec.use_backend("reference"):
        step = GraphedTrainStep(model, optimizer, graphs=False)
        torch.manual_seed(1)
        losses = [step(*batch) for _ in range(2)]
        torch.manual_seed(1)
        for loss in losses:
            twin_optimizer.zero_grad(set_to_none=True)
            expected = twin.loss(*batch)
            expected.backward()
            twin_optimizer.step()
            torch.testing.assert_close(loss, expected.detach())
    assert step.captured == 0
    for ours, theirs in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_off_cuda_any_optimizer_and_value_checks_run_eagerly():
    """The docstring's promise: calls off CUDA run eagerly, so no capture requirement applies."""
    checking = asrec.ASRecModel(**dict(CONFIG, check_values=True))
    batch = _batch(4, device="cpu")
    with asrec.use_backend("reference"):
        for optimizer in (torch.optim.Adam(checking.parameters()), torch.optim.SGD(checking.parameters(), lr=0.1)):
            step = GraphedTrainStep(checking, optimizer)
            assert torch.isfinite(step(*batch)) and step.captured == 0
        scores = GraphedScores(checking.eval())
        assert scores(*batch[:2]).shape == (4, CONFIG["n_items"]) and scores.captured == 0


def test_graphs_need_a_capturable_optimizer_and_a_model_without_value_checks():
    """What a capture on CUDA requires (checked before each capture and at construction for a
    model on CUDA); here called directly, as no GPU is needed to check it."""
    model, optimizer = _model_and_optimizer(device="cpu", capturable=False)
    with pytest.raises(ValueError, match="capturable=True"):
        GraphedTrainStep(model, optimizer)._check_capturable()
    checking = asrec.ASRecModel(**dict(CONFIG, check_values=True))
    with pytest.raises(ValueError, match="check_values=False"):
        GraphedTrainStep(checking, torch.optim.Adam(checking.parameters(), capturable=True))._check_capturable()


def _twins(lr=1e-3):
    model, optimizer = _model_and_optimizer(lr)
    twin = copy.deepcopy(model)
    return (model, optimizer), (twin, torch.optim.Adam(twin.parameters(), lr=lr, capturable=True))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_replayed_step_equals_the_eager_step_for_the_same_rng_state(backend):
    (model, optimizer), (twin, twin_optimizer) = _twins()
    batch = _batch()
    with asrec.use_backend(backend):
        graphed = GraphedTrainStep(model, optimizer)
        eager = GraphedTrainStep(twin, twin_optimizer, graphs=False)
        torch.manual_seed(7)
        graphed_loss = graphed(*batch).clone()
        assert graphed.captured == 1
        torch.manual_seed(7)
        eager_loss = eager(*batch)
    torch.testing.assert_close(graphed_loss, eager_loss)
    for (name, ours), theirs in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(ours, theirs, msg=name)


@pytest.mark.gpu
def test_replays_draw_fresh_dropout_masks():
    model, optimizer = _model_and_optimizer(lr=0.0)  # the parameters stay put: only the masks change
    batch = _batch()
    with asrec.use_backend("triton"):
        step = GraphedTrainStep(model, optimizer)
        losses = [step(*batch).clone() for _ in range(3)]
    assert step.captured == 1
    assert len({loss.item() for loss in losses}) == 3, losses


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_twenty_graphed_steps_track_twenty_eager_steps(backend):
    (model, optimizer), (twin, twin_optimizer) = _twins()
    batches = [_batch(seed=i) for i in range(4)]
    with asrec.use_backend(backend):
        graphed = GraphedTrainStep(model, optimizer)
        eager = GraphedTrainStep(twin, twin_optimizer, graphs=False)
        torch.manual_seed(3)
        graphed_losses = torch.stack([graphed(*batches[i % 4]).clone() for i in range(20)])
        torch.manual_seed(3)
        eager_losses = torch.stack([eager(*batches[i % 4]) for i in range(20)])
    torch.testing.assert_close(graphed_losses, eager_losses, rtol=1e-4, atol=1e-4)
    for (name, ours), theirs in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.gpu
def test_an_uncaptured_batch_size_runs_eagerly():
    (model, optimizer), (twin, twin_optimizer) = _twins()
    full, last = _batch(32), _batch(13, seed=1)
    with asrec.use_backend("triton"):
        graphed = GraphedTrainStep(model, optimizer)
        eager = GraphedTrainStep(twin, twin_optimizer, graphs=False)
        torch.manual_seed(5)
        ours = [graphed(*full).clone(), graphed(*last).clone(), graphed(*full).clone()]
        torch.manual_seed(5)
        theirs = [eager(*full), eager(*last), eager(*full)]
    assert graphed.captured == 1
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_graphed_scores_equal_eager_scores(backend):
    model, _ = _model_and_optimizer()
    model.eval()
    full, last = _batch(32), _batch(13, seed=1)
    with asrec.use_backend(backend):
        scores = GraphedScores(model)
        graphed = [scores(*full[:2]).clone(), scores(*last[:2]).clone(), scores(*_batch(32, seed=2)[:2]).clone()]
        with torch.no_grad():
            eager = [model.full_sort_scores(*b[:2]) for b in (full, last, _batch(32, seed=2))]
    assert scores.captured == 1
    for ours, theirs in zip(graphed, eager):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["triton", "cuda"])
def test_a_step_makes_no_host_synchronisation(backend):
    if asrec.backends.missing_reason(backend) is not None:
        pytest.skip(asrec.backends.missing_reason(backend))
    model, optimizer = _model_and_optimizer()
    batch = _batch()
    with asrec.use_backend(backend):
        step = GraphedTrainStep(model, optimizer, graphs=False)
        step(*batch)  # warm-up: compiled kernels, cached constants
        model.eval()
        with torch.no_grad():
            model.full_sort_scores(*batch[:2])
        model.train()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            step(*batch)
            model.eval()
            with torch.no_grad():
                model.full_sort_scores(*batch[:2])
        finally:
            torch.cuda.set_sync_debug_mode("default")
            model.train()


@pytest.mark.gpu
def test_reduce_overhead_compile_does_not_skip_cudagraphs():
    from torch._dynamo.utils import counters

    model, _ = _model_and_optimizer()
    model.eval()
    batch = _batch()
    counters.clear()
    with asrec.use_backend("triton"):
        compiled = torch.compile(model.full_sort_scores, mode="reduce-overhead")
        with torch.no_grad():
            for _ in range(3):
                out = compiled(*batch[:2])
            expected = model.full_sort_scores(*batch[:2])
    assert not counters["inductor"].get("cudagraph_skips"), dict(counters["inductor"])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
