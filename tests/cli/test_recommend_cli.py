"""``asrec recommend`` from a run folder of ``asrec train``: its outputs equal
``ASRecModel.recommend`` on histories built by hand from the .inter file (JSONL and CSV,
--exclude-seen, --users, --histories, both filter scopes), and bad input is refused with the
flag or file named (status 2 for a malformed command line, 1 for what the run cannot
satisfy), never a traceback."""

import csv
import io
import json
import os
import shutil

import pytest
import torch

from asrec.cli import main
from asrec.train.checkpoints import load_model

N_USERS, N_ITEMS, PER_USER, MAX_SEQ = 30, 20, 8, 6


def _items_of(user):
    """User u's items, oldest first (the file lists them newest first: time order is not file order)."""
    return [f"i{(user + 3 * j) % N_ITEMS}" for j in range(PER_USER)]


def _write_inter(path):
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(N_USERS):
        lines += [f"u{user}\t{item}\t{1000 * user + t}" for t, item in reversed(list(enumerate(_items_of(user))))]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recommend")
    _write_inter(folder / "tiny.inter")
    argv = ["train", "--data-path", str(folder / "tiny.inter"), "--preset", "synthetic", "--hidden-size", "8",
            "--inner-size", "8", "--n-heads", "2", "--max-seq-length", str(MAX_SEQ), "--epochs", "1", "--quiet",
            "--output", str(folder / "run")]
    assert main(argv) == 0
    return str(folder / "run")


def _recommend(argv, capsys, status=0):
    """(stdout, stderr) of ``asrec recommend argv`` after checking its exit status."""
    try:
        code = main(["recommend", *argv])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    assert code == status, err
    if status == 1:
        assert err.count("\n") == 1 and err.startswith("asrec recommend: error: "), err
    return out, err


def _jsonl(text):
    return [json.loads(line) for line in text.splitlines()]


def _expected(run, histories, k, exclude_seen=False, scope=None):
    """[{"user", "items", "scores"}] from ``ASRecModel.recommend`` on one batch of
    ``histories`` [(user, [item tokens oldest first])], the tokens mapped by hand."""
    model = load_model(os.path.join(run, "best.pt")).eval()
    if scope is not None:
        for module in model.modules():
            if hasattr(module, "scope"):
                module.scope = scope
    with open(os.path.join(run, "id_maps.json")) as f:
        item_tokens = json.load(f)["item_tokens"]
    ids = [[item_tokens.index(t) for t in items] for _, items in histories]
    seq = torch.zeros(len(ids), MAX_SEQ, dtype=torch.long)
    for row, items in enumerate(ids):
        seq[row, :len(items[-MAX_SEQ:])] = torch.tensor(items[-MAX_SEQ:])
    length = torch.tensor([min(len(items), MAX_SEQ) for items in ids])
    exclude = None
    if exclude_seen:
        exclude = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        for row, items in enumerate(ids):
            exclude[row, :len(items)] = torch.tensor(items)
    scores, top = model.recommend(seq, length, k, exclude)
    return [{"user": user, "items": [item_tokens[i] for i in row_ids], "scores": row_scores}
            for (user, _), row_ids, row_scores in zip(histories, top.tolist(), scores.tolist())]


ALL = [(f"u{u}", _items_of(u)) for u in range(N_USERS)]


def test_train_saves_the_id_maps_and_histories(run):
    with open(os.path.join(run, "id_maps.json")) as f:
        maps = json.load(f)
    assert maps["user_tokens"] == ["[PAD]"] + [f"u{u}" for u in range(N_USERS)]
    assert sorted(maps["item_tokens"][1:]) == sorted(f"i{i}" for i in range(N_ITEMS))
    assert maps["data_fingerprint"] == torch.load(os.path.join(run, "last.pt"), weights_only=True)["data_fingerprint"]


def test_jsonl_equals_the_model_on_each_users_whole_history(run, capsys):
    out, err = _recommend([run, "--k", "5", "--quiet"], capsys)
    assert _jsonl(out) == _expected(run, ALL, 5) and err == ""


def test_csv_holds_the_same_recommendations(run, capsys):
    out, _ = _recommend([run, "--k", "4", "--format", "csv", "--quiet"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["user", "rank", "item", "score"] and len(rows) == 4 * N_USERS
    for record in _expected(run, ALL, 4):
        mine = [r for r in rows if r["user"] == record["user"]]
        assert [int(r["rank"]) for r in mine] == [1, 2, 3, 4]
        assert [r["item"] for r in mine] == record["items"]
        assert [float(r["score"]) for r in mine] == record["scores"]


def test_exclude_seen_leaves_out_the_whole_history(run, capsys):
    out, _ = _recommend([run, "--k", str(N_ITEMS - PER_USER), "--exclude-seen", "--quiet"], capsys)
    records = _jsonl(out)
    assert records == _expected(run, ALL, N_ITEMS - PER_USER, exclude_seen=True)
    for record, (_, items) in zip(records, ALL):
        assert sorted(record["items"] + items) == sorted(f"i{i}" for i in range(N_ITEMS))  # beyond max_seq_length too
    out, _ = _recommend([run, "--k", str(N_ITEMS - 1), "--exclude-seen", "--users", "u2", "--quiet"], capsys)
    assert len(_jsonl(out)[0]["items"]) == N_ITEMS - PER_USER  # fewer than k left: a shorter list


def test_users_subset_in_run_order_batched_alone(run, capsys):
    out, _ = _recommend([run, "--k", "3", "--users", "u7", "u2", "--quiet"], capsys)
    assert _jsonl(out) == _expected(run, [ALL[2], ALL[7]], 3)


def test_histories_files_jsonl_and_csv(run, tmp_path, capsys):
    histories = [("new-user", ["i3", "i5", "i1"]), ("u4", _items_of(4))]
    jsonl = tmp_path / "h.jsonl"
    jsonl.write_text("".join(json.dumps({"user": u, "items": items}) + "\n" for u, items in histories) + "\n")
    out, _ = _recommend([run, "--histories", str(jsonl), "--k", "6", "--quiet"], capsys)
    assert _jsonl(out) == _expected(run, histories, 6)
    table = tmp_path / "h.csv"
    table.write_text("user,item,extra\n" + "".join(f"{u},{t},x\n" for u, items in histories for t in items))
    out, _ = _recommend([run, "--histories", str(table), "--k", "6", "--quiet"], capsys)
    assert _jsonl(out) == _expected(run, histories, 6)


def test_sequence_scope_does_not_depend_on_the_batch(run, capsys):
    outs = [_jsonl(_recommend([run, "--k", "5", "--filter-scope", "sequence", "--batch-size", size, "--quiet"],
                              capsys)[0]) for size in ("1", "7", "64")]
    assert outs[2] == _expected(run, ALL, 5, scope="sequence")  # one batch, as the hand-made one
    for out in outs[:2]:  # the same items; the scores up to the rounding of batch-size-dependent GEMM blocking
        assert [r["items"] for r in out] == [r["items"] for r in outs[2]]
        torch.testing.assert_close(torch.tensor([r["scores"] for r in out]),
                                   torch.tensor([r["scores"] for r in outs[2]]), rtol=1e-5, atol=1e-6)
    batch_scope = [_recommend([run, "--k", "5", "--batch-size", size, "--quiet"], capsys)[0] for size in ("1", "7")]
    assert batch_scope[0] != batch_scope[1]  # the published threshold couples a batch's users


def test_output_file_and_progress(run, tmp_path, capsys):
    target = tmp_path / "out.jsonl"
    out, err = _recommend([run, "--k", "2", "--batch-size", "10", "--output", str(target)], capsys)
    assert out == "" and "recommend 3/3" in err
    assert len(_jsonl(target.read_text())) == N_USERS


def test_a_run_without_maps_rereads_its_data(run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(run, old)
    os.remove(old / "id_maps.json")
    os.remove(old / "histories.npz")
    out, _ = _recommend([str(old), "--k", "5", "--quiet"], capsys)
    assert _jsonl(out) == _expected(run, ALL, 5)
    last = torch.load(old / "last.pt", weights_only=True)
    del last["data_fingerprint"]
    torch.save(last, old / "last.pt")
    _, err = _recommend([str(old), "--quiet"], capsys, 1)
    assert "has no id_maps.json" in err and "records no data fingerprint" in err


def test_data_path_of_the_same_tokens(run, tmp_path, capsys):
    other = tmp_path / "later.inter"
    _write_inter(other)
    with open(other, "a") as f:
        f.write("u0\ti7\t999\n")  # a later interaction of u0
    out, _ = _recommend([run, "--data-path", str(other), "--k", "5", "--users", "u0", "--quiet"], capsys)
    assert _jsonl(out) == _expected(run, [("u0", _items_of(0) + ["i7"])], 5)
    with open(other, "a") as f:
        f.write("".join(f"u{u}\tnew-item\t{5000 + u}\n" for u in range(5)))
    _, err = _recommend([run, "--data-path", str(other), "--quiet"], capsys, 1)
    assert "--data-path" in err and "'new-item'" in err


@pytest.mark.parametrize("argv,message", [
    (["--k", "0"], "argument --k: expected a positive int, got 0"),
    (["--batch-size", "x"], "argument --batch-size: expected a positive int, got 'x'"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--filter-scope", "user"], "argument --filter-scope: invalid choice: 'user'"),
    (["--histories", "h.jsonl", "--users", "u1"], "--users: does not apply with --histories"),
    (["--users", "u1", "u1"], "--users: 'u1' given more than once"),
])
def test_malformed_command_lines_exit_2(run, argv, message, capsys):
    _, err = _recommend([run, *argv], capsys, 2)
    assert message in err


def test_bad_input_for_the_run_exits_1(run, tmp_path, capsys):
    def fails(argv, *parts):
        _, err = _recommend(argv, capsys, 1)
        assert all(part in err for part in parts), err
    fails([run, "--k", str(N_ITEMS + 1)], "--k: 21 is above the run's catalog of 20 items")
    fails([run, "--users", "u1", "nobody"], "--users: 1 token(s) are not users", "'nobody'")
    fails([str(tmp_path / "absent")], "is not a folder")
    fails([str(tmp_path)], "is not a run folder of asrec train", "no config.json and no best.pt")
    bad = tmp_path / "h.jsonl"
    bad.write_text('{"user": "a", "items": ["i1"]}\n{"user": "b", "items": ["i1", "zzz"]}\n')
    fails([run, "--histories", str(bad)], f"--histories {bad} line 2", "'zzz' is not an item of the run")
    bad.write_text('{"user": "a", "items": []}\n')
    fails([run, "--histories", str(bad)], "line 1", "empty history")
    bad.write_text('not json\n')
    fails([run, "--histories", str(bad)], "line 1: not JSON")
    fails([run, "--histories", str(tmp_path / "h.txt")], "expected a .jsonl or .csv file")
    table = tmp_path / "h.csv"
    table.write_text("user,items\na,i1\n")
    fails([run, "--histories", str(table)], "header has no item column")
    fails([run, "--output", str(tmp_path)], "--output:", "is a folder")
    other = tmp_path / "other"
    shutil.copytree(run, other)
    with open(other / "id_maps.json") as f:
        maps = json.load(f)
    maps["item_tokens"][1:3] = maps["item_tokens"][2:0:-1]  # two items' tokens swapped
    (other / "id_maps.json").write_text(json.dumps(maps))
    fails([str(other)], "item id map changed")
    os.remove(other / "histories.npz")
    fails([str(other)], "histories.npz is missing")
