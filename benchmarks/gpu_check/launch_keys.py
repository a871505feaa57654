"""The distinct Triton launches a process makes, keyed as Triton's JIT specialises them: the
kernel, its constexpr values, each argument's dtype, integers equal to 1 or divisible by 16,
and pointers aligned to 16 bytes. Each distinct key is one compile on a fresh machine."""

import contextlib
import functools
import inspect

import torch


def _argument_key(value):
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), value.data_ptr() % 16 == 0)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return "1" if value == 1 else ("16n" if value % 16 == 0 else "int")
    if isinstance(value, float):
        return "float"
    return repr(value)


@functools.cache
def _parameters(fn) -> tuple:
    """((name, default, is constexpr), ...) of a kernel's Python function."""
    import triton.language as tl

    return tuple((p.name, p.default, p.annotation is tl.constexpr) for p in inspect.signature(fn).parameters.values())


def launch_key(kernel, args: tuple, kwargs: dict) -> tuple:
    """The specialisation key of one launch of ``kernel`` (a JITFunction or InterpretedFunction)."""
    fn = getattr(kernel, "fn", kernel)
    parameters = _parameters(fn)
    bound = dict(zip([name for name, _, _ in parameters], args))
    bound.update(kwargs)
    key = [fn.__name__]
    for name, default, constexpr in parameters:
        value = bound.get(name, default)
        key.append((name, repr(value) if constexpr else _argument_key(value)))
    names = {name for name, _, _ in parameters}
    key += sorted((k, repr(v)) for k, v in kwargs.items() if k not in names)  # num_warps, num_stages, ...
    return tuple(key)


@contextlib.contextmanager
def recording_keys():
    """Within the block, the key of every Triton launch (compiled or interpreted) is added to the
    yielded set; the launches run as they would (through whatever ``run`` is installed)."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    keys, patched = set(), []
    for cls in (JITFunction, InterpretedFunction):
        original = cls.run

        def run(self, *args, _original=original, grid=None, warmup=False, **kwargs):
            keys.add(launch_key(self, args, kwargs))
            return _original(self, *args, grid=grid, warmup=warmup, **kwargs)
        cls.run = run
        patched.append((cls, original))
    try:
        yield keys
    finally:
        for cls, original in patched:
            cls.run = original
