"""Triton kernels of asrec (``asrec.kernels``).

One file per op: ``@triton.jit`` kernels ``_<op>_fwd_kernel`` / ``_<op>_bwd_kernel`` and the
launchers ``_<op>_fwd`` / ``_<op>_bwd`` that check nothing, allocate and launch. Argument
checks, autograd and dispatch live in ``asrec.ops``. Importing this package needs Triton.
"""
