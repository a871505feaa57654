"""The fused kernels' dropout RNG (DESIGN.md): each dropping call draws a Philox state
(seed, offset) as a (2,) int64 tensor on the input's device, the kernels read it through a
pointer, forward saves it for backward; two calls draw different masks and
``torch.manual_seed`` reproduces them."""

import pytest
import torch

import asrec
from asrec.ops import frequency_filter, input_stage, residual_norm
from asrec.ops._dropout import dropout_plan

from ..triton_support import DEVICE, kernel_dropout_factors, rng_state


def test_the_state_is_a_device_tensor_drawn_from_torchs_generator():
    dropping, rng = dropout_plan(0.5, True, torch.device(DEVICE))
    assert dropping and rng.dtype == torch.int64 and rng.shape == (2,) and rng.device.type == DEVICE
    assert (rng >= 0).all()
    torch.manual_seed(11)
    first = dropout_plan(0.5, True, torch.device(DEVICE))[1]
    second = dropout_plan(0.5, True, torch.device(DEVICE))[1]
    torch.manual_seed(11)
    assert torch.equal(dropout_plan(0.5, True, torch.device(DEVICE))[1], first)
    assert not torch.equal(first, second)
    assert dropout_plan(0.5, False, torch.device(DEVICE))[0] is False
    assert dropout_plan(0.0, True, torch.device(DEVICE))[0] is False


def test_kernels_read_seed_and_offset_from_the_tensor():
    """Element i draws at counter offset + i under key seed: the offset shifts the stream, the
    seed changes it, and a launch reads what the tensor holds when it runs (as a CUDA-graph
    replay does), not what it held when the launch was set up."""
    base = kernel_dropout_factors(3000, 77, 0.4, DEVICE)
    shifted = kernel_dropout_factors(1000, 77, 0.4, DEVICE, offset=2000)
    assert torch.equal(shifted, base[2000:])
    assert not torch.equal(kernel_dropout_factors(1000, 78, 0.4, DEVICE), base[:1000])
    high = kernel_dropout_factors(64, 2**61 + 3, 0.4, DEVICE, offset=2**40 - 32)  # 64-bit seed and counter
    assert torch.equal(high, kernel_dropout_factors(64, 2**61 + 3, 0.4, DEVICE, offset=2**40 - 32))
    assert 0 < (high > 0).sum() < 64

    from ..triton_support import _dropout_factors_kernel

    rng = rng_state(77, 0)
    out = torch.empty(1000, device=DEVICE)
    launch = _dropout_factors_kernel[(1,)]
    launch(out, 1000, rng, 0.4, BLOCK=1024)
    assert torch.equal(out, base[:1000])
    rng.copy_(rng_state(77, 2000))  # same launch arguments, new state in the tensor
    launch(out, 1000, rng, 0.4, BLOCK=1024)
    assert torch.equal(out, base[2000:])


def _inputs(hidden=16, seq_len=10, batch=3):
    torch.manual_seed(5)
    ids = torch.randint(1, 20, (batch, seq_len), device=DEVICE)
    tables = dict(item_weight=torch.randn(20, hidden, device=DEVICE), position_weight=torch.randn(seq_len, hidden,
                                                                                                device=DEVICE),
                  norm_weight=1 + 0.1 * torch.randn(hidden, device=DEVICE),
                  norm_bias=0.1 * torch.randn(hidden, device=DEVICE))
    smoothing = (torch.tensor([0.3], device=DEVICE), torch.randn(1, 1, hidden, device=DEVICE),
                 torch.randn(1, 1, hidden, device=DEVICE))
    x = torch.randn(batch, seq_len, hidden, device=DEVICE)
    return ids, tables, smoothing, x


def _dropping_calls():
    """One training-mode call of each dropping op kind: name -> () -> output."""
    ids, t, smoothing, x = _inputs()
    threshold = torch.tensor(0.7, device=DEVICE)
    return {
        "input_stage": lambda: input_stage(ids, t["item_weight"], t["position_weight"], t["norm_weight"],
                                           t["norm_bias"], 1e-12, 0.5, True, *smoothing, 0.4),
        "frequency_filter": lambda: frequency_filter(x, threshold, t["norm_weight"], t["norm_bias"], 1e-12, 0.5, True),
        "residual_norm": lambda: residual_norm(x, x.flip(1), t["norm_weight"], t["norm_bias"], 1e-12, 0.5, True),
    }


@pytest.mark.parametrize("op", ["input_stage", "frequency_filter", "residual_norm"])
def test_two_training_calls_draw_different_masks_and_manual_seed_reproduces_them(op):
    call = _dropping_calls()[op]
    with asrec.use_backend("triton"):
        torch.manual_seed(123)
        first, second = call(), call()
        torch.manual_seed(123)
        again_first, again_second = call(), call()
    assert not torch.equal(first, second), "two calls drew the same dropout mask"
    assert torch.equal(first, again_first) and torch.equal(second, again_second)


def test_model_training_steps_draw_fresh_masks_and_replay_under_manual_seed():
    """Two training losses of one model on one batch differ (fresh masks every call); re-seeding
    reproduces both, gradients included (backward regenerates each call's own mask)."""
    model = asrec.ASRecModel(n_items=30, max_seq_length=12, hidden_size=16, n_heads=2, inner_size=16,
                             check_values=False).to(DEVICE)
    items = torch.randint(1, 30, (3, 12), device=DEVICE)
    lengths = torch.tensor([12, 5, 9], device=DEVICE)
    targets = torch.randint(1, 30, (3,), device=DEVICE)

    def step():
        model.zero_grad()
        loss = model.loss(items, lengths, targets)
        loss.backward()
        return loss.detach(), model.item_embedding.weight.grad.clone()

    with asrec.use_backend("triton"):
        torch.manual_seed(9)
        first, second = step(), step()
        torch.manual_seed(9)
        again = step(), step()
    assert not torch.equal(first[0], second[0])
    for ours, theirs in zip((first, second), again):
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


def test_a_shared_draw_hands_out_distinct_rows_of_one_draw_and_is_reproducible():
    from asrec.ops._dropout import SHARED_DRAW_ROWS, dropout_rng, shared_dropout_draw

    device = torch.device(DEVICE)
    torch.manual_seed(5)
    with shared_dropout_draw():
        states = [dropout_rng(device) for _ in range(SHARED_DRAW_ROWS + 3)]  # past one draw: a second one
        with shared_dropout_draw():  # re-entering keeps the outer draw
            inner = dropout_rng(device)
    assert all(s.shape == (2,) and s.dtype == torch.int64 for s in states)
    assert len({tuple(s.tolist()) for s in states + [inner]}) == SHARED_DRAW_ROWS + 4
    assert states[1]._base is states[0]._base  # views of one draw, not one draw each
    torch.manual_seed(5)
    with shared_dropout_draw():
        again = [dropout_rng(device) for _ in range(SHARED_DRAW_ROWS + 3)]
    assert all(torch.equal(a, b) for a, b in zip(states, again))
    assert dropout_rng(device)._base is None  # outside a block: a draw of its own


def test_a_model_training_forward_draws_its_dropout_states_once():
    """Every dropping call of one forward (input stage, attention, filter, norms) shares one draw."""
    model = asrec.ASRecModel(n_items=30, max_seq_length=12, hidden_size=16, n_layers=2, n_heads=2, inner_size=32,
                             hidden_dropout_prob=0.3, attn_dropout_prob=0.3, device=DEVICE).train()
    items = torch.randint(1, 30, (3, 12), device=DEVICE)
    lengths = torch.tensor([12, 5, 1], device=DEVICE)
    draws = []
    original = torch.randint

    def counting_randint(*args, **kwargs):
        draws.append(args)
        return original(*args, **kwargs)

    torch.randint = counting_randint
    try:
        with asrec.use_backend("triton"):
            model.loss(items, lengths, torch.tensor([1, 2, 3], device=DEVICE)).backward()
    finally:
        torch.randint = original
    assert len(draws) == 1, draws
