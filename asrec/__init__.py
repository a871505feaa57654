"""asrec: the ASRec sequential recommender, exact and fast.

    import asrec
    encoder = asrec.ASRec(hidden_size=64, max_seq_length=50)           # drop-in encoder
    model = asrec.ASRecModel(n_items=1683, max_seq_length=50)           # full recommender
    with asrec.use_backend("reference"): ...                            # backend switch
    print(asrec.backends.describe())                                    # what runs where
"""

from . import backends, ops, reference
from .backends import use_backend
from .model import ASRecModel
from .modules import ASRec

__version__ = "0.1.0"

__all__ = ["ASRec", "ASRecModel", "backends", "ops", "reference", "use_backend", "__version__"]
