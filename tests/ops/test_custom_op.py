"""The custom-op wrapper every Triton launcher goes through."""

import torch

from asrec.ops import _custom_op


class _On:
    def __init__(self, device):
        self.device = torch.device(device)


def test_launchers_run_under_their_input_device(monkeypatch):
    """A tensor on cuda:1 launches on cuda:1, whatever the current device (Triton launches on
    the current one)."""
    entered = []

    class Recorder:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            return False

    def launcher(x: torch.Tensor) -> torch.Tensor:
        return x

    op = _custom_op.CustomOp("asrec_test::identity_under_device", launcher)
    monkeypatch.setattr(torch.cuda, "device", Recorder)
    on_second_gpu = _On("cuda:1")
    assert op.launcher(on_second_gpu) is on_second_gpu
    assert entered == [torch.device("cuda:1")]
    x = torch.ones(2)
    assert op(x) is x and entered == [torch.device("cuda:1")]  # CPU tensors (the interpreter): no guard
