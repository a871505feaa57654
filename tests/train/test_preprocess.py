import hashlib
import os

import numpy as np
import pytest

from asrec.data import build_sequences, load_dataset, padded_batch
from asrec.data.atomic import DataFormatError, read_interactions
from asrec.data.preprocess import filter_by_interactions, first_appearance_codes, recbole_time_key

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


def split_fingerprint(data, split: str) -> str:
    """sha256 over the split's users, padded histories, lengths and targets (int64, in order)."""
    samples = getattr(data, split)
    seq, length, target = padded_batch(data.items, samples, np.arange(len(samples)), data.max_seq_length)
    digest = hashlib.sha256()
    for array in (samples.user, seq, length, target):
        digest.update(np.ascontiguousarray(array.astype(np.int64)).tobytes())
    return digest.hexdigest()[:16]


# RecBole 1.2.1's samples on ml-100k with the published settings (run_ASRec.py), hashed as
# split_fingerprint does: tests/recbole/compare_splits.py compares sample by sample in CI
RECBOLE_ML100K = {"train": "3cd92b5df7c7ed28", "valid": "b7a7d6d73bcf4a19", "test": "ccbc71fc39fd837d"}


def test_ml100k_samples_are_recboles():
    data, name, _ = load_dataset(None, shared_ml100k(), 50)
    assert name == "ml-100k"
    assert {split: split_fingerprint(data, split) for split in RECBOLE_ML100K} == RECBOLE_ML100K
    # without the preset's time normalisation, float32 ties fall elsewhere: thousands of other histories
    raw = read_interactions(shared_ml100k(), "user_id", "item_id", "timestamp")
    plain = build_sequences(raw["user"], raw["item"], raw["time"], 50)
    assert split_fingerprint(plain, "train") != RECBOLE_ML100K["train"]


def test_min_interactions_reaches_the_filter():
    data, _, _ = load_dataset(None, shared_ml100k(), 50, min_interactions=30)
    counts = np.bincount(data.items)[1:]
    assert counts.min() >= 30 and data.n_users < 943
    default, _, _ = load_dataset(None, shared_ml100k(), 50)
    assert (default.n_users, default.n_items) == (943, 1349)


def test_time_key_is_recboles_float32():
    times = np.array([1e9, 1e9 + 10, np.nan, 1e9 + 200])
    key = recbole_time_key(times)
    assert key.dtype == np.float32
    assert key[0] == key[1] < key[3]            # float32 resolves 64 s steps at 1e9
    assert key[2] == np.float32(np.mean([1e9, 1e9 + 10, 1e9 + 200]))   # missing: the mean time
    scaled = recbole_time_key(np.array([10.0, 20.0, 15.0]), normalize=True)
    assert scaled.tolist() == [0.0, 1.0, 0.5]
    assert recbole_time_key(np.array([3.0, 3.0]), normalize=True).tolist() == [1.0, 1.0]


def test_float32_ties_keep_file_order():
    # user a's second and third interactions are 10 s apart, written in reverse time order:
    # one float32 key, so RecBole keeps them in file order
    users = np.array(["a"] * 4)
    items = np.array(["i0", "i2", "i1", "i3"])
    times = np.array([1e9 - 1000, 1e9 + 10, 1e9, 1e9 + 1000])
    data = build_sequences(users, items, times, max_seq_length=5, min_interactions=1)
    assert data.items.tolist() == [1, 2, 3, 4]  # ids in first-appearance order: i0 i2 i1 i3
    exact = build_sequences(users, items, times, max_seq_length=5, min_interactions=1, normalize_time=True)
    assert exact.items.tolist() == [1, 3, 2, 4]  # scaled to [0, 1], 10 s of 2000 s is resolved


def test_missing_ids_and_times(tmp_path):
    path = tmp_path / "gaps.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n"
                    "u1\ti1\t1\nNA\ti1\t2\nu1\t\t3\nu1\ti2\t\nu2\tnan\t5\nu2\ti3\t6\n")
    raw = read_interactions(str(path), "user_id", "item_id", "timestamp")
    assert raw["user"].tolist() == ["u1", "u1", "u2"] and raw["item"].tolist() == ["i1", "i2", "i3"]
    assert raw["time"][0] == 1 and np.isnan(raw["time"][1]) and raw["time"][2] == 6


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


def test_bad_rows_name_their_line(tmp_path):
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    cases = {"long": ("u1\ti1\t3\t1\nu1\ti2\t3\t2\t9\n", "line 3 has 5 columns, the header has 4"),
             "short": ("u1\ti1\t3\t1\nu1\ti2\t3\n", "line 3 has 3 columns, the header has 4"),
             "time": ("u1\ti1\t3\t1\n\nu1\ti2\t3\tabc\n", r"line 4: field 'timestamp' is not numeric \('abc'\)")}
    for name, (rows, message) in cases.items():
        path = tmp_path / f"{name}.inter"
        path.write_text(header + rows)
        with pytest.raises(DataFormatError, match=message) as raised:
            read_interactions(str(path), "user_id", "item_id", "timestamp")
        assert str(path) in str(raised.value)
    latin = tmp_path / "latin.inter"
    latin.write_bytes(header.encode() + "u\xe91\ti1\t3\t1\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="latin.inter: not UTF-8 text"):
        read_interactions(str(latin), "user_id", "item_id", "timestamp")


def test_blank_lines_crlf_and_other_columns(tmp_path):
    path = tmp_path / "crlf.inter"
    path.write_bytes(b"rating:float\ttimestamp:float\tuser_id:token\titem_id:token\r\n"
                     b"3\t1\tu1\ti1\r\n\r\n4\t\tu1\ti2\r\n5\t7\tu2\t007\r\n")
    raw = read_interactions(str(path), "user_id", "item_id", "timestamp")
    assert raw["user"].tolist() == ["u1", "u1", "u2"] and raw["item"].tolist() == ["i1", "i2", "007"]
    assert raw["time"][0] == 1 and np.isnan(raw["time"][1]) and raw["time"][2] == 7


def test_generated_file_loads_and_splits(tmp_path):
    from asrec.data.generate_inter import interaction_columns, main, write_inter

    path = tmp_path / "gen.inter"
    assert write_inter(str(path), users=40, items=60, interactions=2_000, seed=3, chunk_rows=700) == 2_000
    again = tmp_path / "again.inter"
    assert main([str(again), "--users", "40", "--items", "60", "--interactions", "2000", "--seed", "3"]) == 0
    assert path.read_bytes() == again.read_bytes()  # seeded: the same bytes, whatever the chunking
    user, item, time = interaction_columns(40, 60, 2_000, seed=3)
    raw = read_interactions(str(path), "user_id", "item_id", "timestamp")
    assert raw["user"].tolist() == user.astype(str).tolist() and raw["time"].tolist() == time.tolist()
    assert (np.diff(time)[np.diff(user) == 0] >= 0).all()  # each user's rows in time order
    data, _, _ = load_dataset(None, str(path), 10)
    assert data.n_users == 40 and 0 < data.n_items <= 60
    assert len(data.train) + len(data.valid) + len(data.test) == len(data.items) - data.n_users
    with pytest.raises(ValueError, match="users: expected an int >= 1"):
        interaction_columns(0, 60, 10)


def test_chunked_reading_is_one_read(tmp_path):
    # tokens shared across chunks keep their first-appearance order; missing ids dropped in any chunk
    path = tmp_path / "chunks.inter"
    path.write_text("user_id:token\titem_id:token\ttimestamp:float\n"
                    "u2\ti9\t1\nu1\tNA\t2\n\nu1\ti9\t3\nNULL\ti1\t4\nu3\ti1\t\nu2\ti007\t6\nu2\ti7\t7\n")
    whole = read_interactions(str(path), "user_id", "item_id", "timestamp")
    assert whole["user"].tolist() == ["u2", "u1", "u3", "u2", "u2"]
    assert whole["item"].tolist() == ["i9", "i9", "i1", "i007", "i7"]
    for rows in (1, 2, 3):
        parts = read_interactions(str(path), "user_id", "item_id", "timestamp", chunk_rows=rows)
        assert all(parts[k].tolist() == whole[k].tolist() for k in ("user", "item")), rows
        np.testing.assert_array_equal(parts["time"], whole["time"])
    long = tmp_path / "long.inter"
    long.write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "u\ti\t1\n" * 5 + "u\ti\t1\t2\n")
    with pytest.raises(DataFormatError, match="line 7 has 4 columns, the header has 3"):
        read_interactions(str(long), "user_id", "item_id", "timestamp", chunk_rows=2)
