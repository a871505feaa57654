"""The five datasets of the paper: where RecBole serves them, how their files read and the
per-dataset settings RecBole 1.2.1 applies to them under the published ``run_ASRec.py``.

The addresses are the ones the published code's README links (RecBole's processed
atomic files). ``ASREC_DATASET_BASE_URL`` replaces the common prefix (a mirror, or a
local server in tests).
"""

import os
from dataclasses import dataclass
from typing import Optional

DEFAULT_BASE_URL = "https://recbole.s3-accelerate.amazonaws.com/ProcessedDatasets/"
BASE_URL_ENV = "ASREC_DATASET_BASE_URL"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    archive: str                  # path under the base URL
    inter_file: str               # the .inter file inside the archive
    user_field: str = "user_id"
    item_field: str = "item_id"
    time_field: str = "timestamp"
    min_time: Optional[float] = None       # published 'val_interval' on the time field
    # RecBole's own preset for the dataset name (recbole/properties/dataset/<name>.yaml) sets
    # 'normalize_all: True' for ml-100k only: its times are min-max scaled before they are
    # stored as float32, which decides the order of near-simultaneous interactions
    normalize_time: bool = False
    inter_sha256: Optional[str] = None     # known digest of the extracted .inter file


DATASETS = {
    "ml-100k": DatasetInfo("ml-100k", "MovieLens/ml-100k.zip", "ml-100k.inter", normalize_time=True,
                           inter_sha256="4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"),
    "ml-1m": DatasetInfo("ml-1m", "MovieLens/ml-1m.zip", "ml-1m.inter"),
    "amazon-beauty": DatasetInfo("amazon-beauty", "Amazon_ratings/Amazon_Beauty.zip", "Amazon_Beauty.inter"),
    "amazon-sports-outdoors": DatasetInfo("amazon-sports-outdoors", "Amazon_ratings/Amazon_Sports_and_Outdoors.zip",
                                          "Amazon_Sports_and_Outdoors.inter"),
    # the published yelp run reads business_id/date and keeps reviews from 2019 on
    "yelp": DatasetInfo("yelp", "Yelp/yelp.zip", "yelp.inter", item_field="business_id", time_field="date",
                        min_time=1546272000.0),
}


def base_url() -> str:
    url = os.environ.get(BASE_URL_ENV, DEFAULT_BASE_URL)
    return url if url.endswith("/") else url + "/"


def default_cache_dir() -> str:
    return os.environ.get("ASREC_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "asrec", "datasets"))
