"""asrec inside RecBole: ``asrec.recbole.ASRec`` is a RecBole ``SequentialRecommender`` with the
published model's config keys and state_dict layout, computed by ``asrec.ASRecModel`` (and
so by asrec's backends). Needs RecBole 1.2.1 (``pip install "asrec[recbole]"``); ``import
asrec`` never imports it.

    from asrec.recbole import ASRec, published_config, run
    results = run("ml-100k", data_path="../shared/data/ml-100k", epochs=1)  # RecBole's files: results["output"]
"""

try:
    import recbole  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised where RecBole is absent
    raise ImportError('asrec.recbole needs RecBole 1.2.1: pip install "asrec[recbole]"') from error

from .config import published_config
from .model import ASRec
from .run import load_best, run

__all__ = ["ASRec", "load_best", "published_config", "run"]
