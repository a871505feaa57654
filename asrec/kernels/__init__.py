"""Triton kernels of asrec (``asrec.kernels``).

A file per op, named after it (``input_stage``, ``fourier_smoothing``, ``frequency_filter``,
``multiscale_conv``, ``contrast_gelu``, ``residual_norm``, ``feed_forward``, ``take_rows``,
``cross_entropy``, ``padding_bias``), with two that serve more than one op:
``gated_attention.py`` holds the attention kernels of ``attention``, ``gated_attention`` and
``hybrid_attention`` (one kernel pair, the gate and the branch axis as options), and
``frequency_keep_mask.py`` the keep-mask pieces the filter's kernels inline; ``_common.py``
the shared device functions and the fixed-order column sums.

Each holds ``@triton.jit`` kernels ``_<op>_fwd_kernel`` / ``_<op>_bwd_kernel``, the launchers
``_<op>_fwd`` / ``_<op>_bwd`` that allocate and launch (no argument checks, no autograd), and
where tiles bound the shapes, ``unsupported_shape``: the shapes they cannot take, which
``asrec.ops`` reads before choosing the kernel. Argument checks, autograd and dispatch live in ``asrec.ops``. Importing
this package needs Triton.
"""
