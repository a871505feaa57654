import os

import numpy as np
import pytest

from asrec.data import build_sequences, padded_batch
from asrec.data.atomic import DataFormatError, read_interactions
from asrec.data.preprocess import filter_by_interactions, first_appearance_codes

SHARED_ML100K = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "ml-100k",
                             "ml-100k.inter")


def shared_ml100k():
    if not os.path.isfile(SHARED_ML100K):
        if os.environ.get("ASREC_REQUIRE_DATA"):
            pytest.fail(f"ASREC_REQUIRE_DATA is set but {SHARED_ML100K} is missing")
        pytest.skip("../shared/data/ml-100k is not beside this checkout")
    return SHARED_ML100K


def test_ml100k_statistics_match_recbole():
    raw = read_interactions(shared_ml100k(), "user_id", "item_id", "timestamp")
    assert len(raw["user"]) == 100_000
    data = build_sequences(raw["user"], raw["item"], raw["time"], 50)
    stats = data.statistics()
    # RecBole 1.2 with user/item_inter_num_interval '(4, inf)': 943 users, 1349 items, 99287 inters
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1349, 99287)
    assert (stats["train_samples"], stats["valid_samples"], stats["test_samples"]) == (96458, 943, 943)
    assert data.train.length.max() == 50 and data.valid.length.min() >= 3


def test_first_appearance_codes_are_factorize_order():
    codes, uniques = first_appearance_codes(np.array(["c", "a", "c", "b", "a"]))
    assert codes.tolist() == [0, 1, 0, 2, 1] and uniques.tolist() == ["c", "a", "b"]


def test_filter_recounts_until_stable():
    once = filter_by_interactions(np.array([0, 0, 1]), np.array([0, 0, 1]), 2)
    assert once.tolist() == [True, True, False]
    chain = filter_by_interactions(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 2)
    assert chain.all()
    collapse = filter_by_interactions(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2]), 2)
    assert not collapse.any()  # item 0 and 2 go, then both users, then item 1


def test_samples_history_truncation_split_and_eval_order():
    users = np.array(["b"] * 6 + ["a"] * 5)
    items = np.array([f"i{k}" for k in range(6)] + [f"i{k}" for k in range(5)])
    times = np.r_[np.arange(6) + 100.0, np.arange(5) + 10.0]   # user a's history is earlier
    data = build_sequences(users, items, times, max_seq_length=3, min_interactions=1)
    assert data.n_users == 2 and data.n_items == 6
    # users are ordered by their earliest sample: a (id 2) before b (id 1)
    assert data.valid.user.tolist() == [2, 1] and data.test.user.tolist() == [2, 1]
    seq, length, target = padded_batch(data.items, data.test, np.arange(2), 3)
    assert length.tolist() == [3, 3]
    assert seq.tolist() == [[2, 3, 4], [3, 4, 5]] and target.tolist() == [5, 6]   # last 3 items only
    seq, length, target = padded_batch(data.items, data.train, np.arange(len(data.train)), 3)
    assert seq[0].tolist() == [1, 0, 0] and length[0] == 1 and target[0] == 2
    assert len(data.train) == (5 - 1 - 2) + (6 - 1 - 2)


def test_bad_files(tmp_path):
    empty = tmp_path / "empty.inter"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty file"):
        read_interactions(str(empty), "user_id", "item_id", "timestamp")
    untyped = tmp_path / "untyped.inter"
    untyped.write_text("user_id\titem_id\ttimestamp\n1\t2\t3\n")
    with pytest.raises(DataFormatError, match="not typed"):
        read_interactions(str(untyped), "user_id", "item_id", "timestamp")
    short = tmp_path / "short.inter"
    short.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\n")
    with pytest.raises(DataFormatError, match="line 2 has 2 columns"):
        read_interactions(str(short), "user_id", "item_id", "timestamp")
    with pytest.raises(DataFormatError, match=r"fields \['business_id'\] not in its header"):
        read_interactions(str(short), "user_id", "business_id", "timestamp")
    with pytest.raises(FileNotFoundError):
        read_interactions(str(tmp_path / "none.inter"), "user_id", "item_id", "timestamp")
