"""The custom-op wrapper of every leaf op's Triton launchers.

The Triton launchers of ``asrec.kernels`` become ``torch.library`` custom ops (namespace
``asrec``) with fake (shape-only) implementations, so ``torch.compile`` traces the
autograd Functions into one graph without breaking at a kernel launch, and
``torch.library.opcheck`` can test the registrations. The ops take tensors and scalars
only: a call's dropout RNG state travels as a (2,) int64 tensor ``rng = (seed, offset)`` on
the input's device, which the kernels read (``asrec.ops._dropout``).
"""

import functools

import torch


class CustomOp:
    """A Triton launcher registered as the custom op ``name``, which eager code calls directly.

    Under ``torch.compile`` the registered op is called (an opaque node with its fake
    implementation); in eager mode the launcher runs without the dispatcher's Python
    custom-op path, pure host overhead here. Both run it under the CUDA device of its first
    argument, so a tensor on ``cuda:1`` never launches on the current device instead.
    """

    def __init__(self, name: str, launcher):
        @functools.wraps(launcher)  # the op's schema is read from the launcher's signature
        def on_input_device(*args):
            device = args[0].device
            if device.type != "cuda":
                return launcher(*args)
            with torch.cuda.device(device):
                return launcher(*args)

        self.launcher = on_input_device
        self.op = torch.library.custom_op(name, on_input_device, mutates_args=())

    def register_fake(self, fake):
        self.op.register_fake(fake)
        return fake

    def __call__(self, *args):
        if torch.compiler.is_compiling():
            return self.op(*args)
        return self.launcher(*args)


def custom_op(name: str):
    """Decorator: the launcher below becomes ``CustomOp(name, launcher)``."""
    return lambda launcher: CustomOp(name, launcher)
