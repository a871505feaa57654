"""The table of ops and the backends that implement them."""

from .. import backends, reference

OPS = {
    "fourier_smoothing": {"reference": reference.fourier_smoothing_ref},
    "frequency_filter": {"reference": reference.frequency_filter_ref},
    "seasonal_branch": {"reference": reference.seasonal_branch_ref},
    "dynamic_branch": {"reference": reference.dynamic_branch_ref},
    "hybrid_layer": {"reference": reference.hybrid_layer_ref},
}


def implementation(op: str, device_type: str):
    """The callable that runs ``op`` for tensors on ``device_type`` now."""
    implementations = OPS[op]
    return implementations[backends.resolve(op, implementations, device_type)]
