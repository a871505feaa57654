"""``--resume`` from a ``last.pt`` whose optimizer state was written for the parameter list
before the stacking commits (02b353f: one (6H, H) q/k/v projection per layer; 5283ec0: one
(3, N, 1) position-scale parameter per seasonal branch).

The earlier layouts are written out here by hand from the code of those commits (and
checked against that code when the repository's history is at hand), and the earlier
checkpoints are made from the current state by cutting each stacked tensor's state into
its parts by hand, independently of ``asrec.train.optimizer_layout``."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from asrec import ASRecModel
from asrec.cli import main
from asrec.train.checkpoints import CheckpointError
from asrec.train.optimizer_layout import LAYOUT_KEY, load_optimizer_state, optimizer_parameter_names

from .test_training import SMALL, _log

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = dict(n_items=30, max_seq_length=7, hidden_size=8, n_layers=2, n_heads=2, inner_size=16)

# Where each separate tensor of the earlier layouts now lives: (parameter under the layer, row
# block, blocks). The projections' rows: [seasonal query, key, value | dynamic query, key,
# value]; the position scales' rows: [small, middle, large].
PARTS = {f"{branch}.{proj}.{tensor}": (f"projections.{tensor}", 3 * b + i, 6)
         for b, branch in enumerate(("seasonal", "dynamic")) for i, proj in enumerate(("query", "key", "value"))
         for tensor in ("weight", "bias")}
PARTS.update({f"seasonal.position_scale_{name}": ("seasonal.position_scales", i, 3)
              for i, name in enumerate(("small", "middle", "large"))})


def _linear(*names):
    return [f"{name}.{tensor}" for name in names for tensor in ("weight", "bias")]


# One hybrid layer's parameters at 0cfc416, in named_parameters() order: each module's own
# parameters in registration order (the position scales registered small, LARGE, middle),
# then its children's.
LAYER_0CFC416 = (["branch_mix"]
                 + [f"seasonal.{n}" for n in ("contrast_scale", "origin_scale", "position_scale_small",
                                              "position_scale_large", "position_scale_middle", "gate_weight",
                                              "gate_bias")]
                 + _linear(*(f"seasonal.{n}" for n in ("query", "key", "value", "dense", "norm", "conv_small",
                                                       "conv_middle", "conv_large", "frequency_filter.norm")))
                 + _linear(*(f"dynamic.{n}" for n in ("query", "key", "value", "dense", "norm")))
                 + _linear(*(f"feed_forward.{n}" for n in ("dense_in", "dense_out", "norm"))))
# 02b353f: the projections stacked (the layer registers them before its branches), the
# position scales still separate.
LAYER_02B353F = (["branch_mix", "projections.weight", "projections.bias"]
                 + [n for n in LAYER_0CFC416[1:] if n not in PARTS or "position_scale" in n])
LAYERS = {"0cfc416": LAYER_0CFC416, "02b353f": LAYER_02B353F}


def _layout(model: ASRecModel, commit: str) -> list:
    """The parameter names of ``model`` as the code of ``commit`` had them, in order."""
    names = [name for name, _ in model.named_parameters()]
    outside = [name for name in names if not name.startswith("encoder.layers.")]
    assert names[:len(outside)] == outside  # every other parameter comes before the layers
    return outside + [f"encoder.layers.{i}.{n}" for i in range(len(model.encoder.layers)) for n in LAYERS[commit]]


def _where(name: str) -> tuple:
    """(current parameter name, row block, blocks) of an earlier layout's tensor."""
    if name.startswith("encoder.layers."):
        layer, rest = name[:len("encoder.layers.0.")], name[len("encoder.layers.0."):]
        if rest in PARTS:
            stacked, block, blocks = PARTS[rest]
            return layer + stacked, block, blocks
    return name, 0, 1


def _to_layout(saved: dict, model: ASRecModel, commit: str) -> dict:
    """The current optimizer state_dict ``saved`` (one group, ``model.parameters()`` order)
    as ``commit``'s code would have written it: each stacked tensor's state cut into its parts."""
    index = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    assert len(saved["param_groups"]) == 1 and saved["param_groups"][0]["params"] == list(range(len(index)))
    state = {}
    names = _layout(model, commit)
    for k, name in enumerate(names):
        current, block, blocks = _where(name)
        if index[current] not in saved["state"]:
            continue
        state[k] = {}
        for key, value in saved["state"][index[current]].items():
            if key == "step" or blocks == 1:
                state[k][key] = value.clone()
            else:
                state[k][key] = value.chunk(blocks)[block].clone()
    return dict(state=state, param_groups=[dict(saved["param_groups"][0], params=list(range(len(names))))])


def _trained(steps=2):
    """A model and its Adam after ``steps`` steps on random batches."""
    model = ASRecModel(**CONFIG)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        seq = torch.randint(1, CONFIG["n_items"], (5, CONFIG["max_seq_length"]))
        length = torch.tensor([7, 3, 1, 5, 7])
        seq[torch.arange(CONFIG["max_seq_length"]) >= length[:, None]] = 0
        optimizer.zero_grad()
        model.loss(seq, length, torch.randint(1, CONFIG["n_items"], (5,))).backward()
        optimizer.step()
    return model, optimizer


def _fresh(model):
    """The same weights with a new Adam, as a resume builds them."""
    copy = ASRecModel(**CONFIG)
    copy.load_state_dict(model.state_dict())
    return copy, torch.optim.Adam(copy.parameters(), lr=1e-2, weight_decay=1e-3)


def _assert_same_state(a: dict, b: dict):
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        assert a["state"][i].keys() == b["state"][i].keys(), i
        for key in a["state"][i]:
            assert torch.equal(a["state"][i][key], b["state"][i][key]), (i, key)


@pytest.mark.parametrize("commit", ["0cfc416", "02b353f"])
def test_the_layouts_written_here_are_those_of_the_commits(commit, tmp_path):
    """The hand-written layout is the named_parameters() of the commit's own code (names and shapes)."""
    if shutil.which("git") is None or subprocess.run(["git", "cat-file", "-e", commit], cwd=REPO,
                                                     capture_output=True).returncode:
        pytest.skip(f"the repository's history (commit {commit}) is not at hand")
    archive = subprocess.run(["git", "archive", commit, "asrec"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
    code = ("import json, torch; from asrec.model import ASRecModel; "
            f"m = ASRecModel(**{CONFIG!r}); print(json.dumps([[n, list(p.shape)] for n, p in m.named_parameters()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert out.returncode == 0, out.stderr[-3000:]
    theirs = json.loads(out.stdout.strip().splitlines()[-1])
    model = ASRecModel(**CONFIG)
    params = dict(model.named_parameters())
    ours = []
    for name in _layout(model, commit):
        current, _, blocks = _where(name)
        shape = list(params[current].shape)
        ours.append([name, [shape[0] // blocks, *shape[1:]] if blocks > 1 else shape])
    assert ours == theirs


@pytest.mark.parametrize("commit", ["0cfc416", "02b353f"])
def test_earlier_optimizer_state_is_stacked_back_exactly(commit):
    model, optimizer = _trained()
    saved = optimizer.state_dict()
    earlier = _to_layout(saved, model, commit)
    assert len(earlier["param_groups"][0]["params"]) > len(saved["param_groups"][0]["params"])
    resumed_model, resumed = _fresh(model)
    with pytest.raises(ValueError, match="doesn't match the size"):  # what PyTorch makes of it
        resumed.load_state_dict(earlier)
    resumed_model, resumed = _fresh(model)
    assert load_optimizer_state(resumed, resumed_model, dict(optimizer=earlier)).startswith(f"of {commit}")
    _assert_same_state(resumed.state_dict(), saved)
    # and one more step from there is the step of the optimizer that never stopped
    seq, length, target = torch.tensor([[3, 4, 5, 0, 0, 0, 0]]), torch.tensor([3]), torch.tensor([6])
    for m, opt in ((model, optimizer), (resumed_model, resumed)):
        torch.manual_seed(1)
        opt.zero_grad()
        m.loss(seq, length, target).backward()
        opt.step()
    for (name, a), b in zip(model.named_parameters(), resumed_model.parameters()):
        assert torch.equal(a, b), name
    _assert_same_state(resumed.state_dict(), optimizer.state_dict())


def test_recorded_names_map_an_earlier_layout_and_the_current_one():
    model, optimizer = _trained()
    saved = optimizer.state_dict()
    assert optimizer_parameter_names(model, optimizer) == [name for name, _ in model.named_parameters()]
    for names, state in ((_layout(model, "0cfc416"), _to_layout(saved, model, "0cfc416")),
                         (optimizer_parameter_names(model, optimizer), saved)):
        resumed_model, resumed = _fresh(model)
        load_optimizer_state(resumed, resumed_model, {"optimizer": state, LAYOUT_KEY: names})
        _assert_same_state(resumed.state_dict(), saved)


def test_unknown_layouts_are_refused_with_a_reason():
    model, optimizer = _trained()
    earlier = _to_layout(optimizer.state_dict(), model, "0cfc416")
    dropped = dict(earlier, param_groups=[dict(earlier["param_groups"][0],
                                               params=earlier["param_groups"][0]["params"][:-1])])
    resumed_model, resumed = _fresh(model)
    with pytest.raises(CheckpointError, match="match neither this version's .* parameters nor a known earlier layout"):
        load_optimizer_state(resumed, resumed_model, dict(optimizer=dropped))
    # the parts of one stacked parameter must have state all or none
    names = _layout(model, "0cfc416")
    partial = dict(earlier, state=dict(earlier["state"]))
    del partial["state"][names.index("encoder.layers.1.dynamic.key.weight")]
    with pytest.raises(CheckpointError, match="state for some of .*dynamic.key.weight"):
        load_optimizer_state(resumed, resumed_model, dict(optimizer=partial))
    # and their step counts must agree
    steps = dict(earlier, state={k: dict(v) for k, v in earlier["state"].items()})
    steps["state"][names.index("encoder.layers.0.seasonal.position_scale_large")]["step"] += 1
    with pytest.raises(CheckpointError, match="different 'step' values"):
        load_optimizer_state(resumed, resumed_model, dict(optimizer=steps))
    with pytest.raises(CheckpointError, match="neither as parameters nor as parts of one: bogus"):
        load_optimizer_state(resumed, resumed_model, {"optimizer": earlier, LAYOUT_KEY: ["bogus", *names[1:]]})


def _rewrite_last(folder: str, commit: str) -> dict:
    """Rewrite the run's last.pt as ``commit``'s code wrote it: its optimizer layout, no names."""
    path = os.path.join(folder, "last.pt")
    payload = torch.load(path, weights_only=True)
    config = payload["model_config"]
    model = ASRecModel(**config)
    model.load_state_dict(payload["state_dict"])
    current = payload["optimizer"]
    assert payload.pop(LAYOUT_KEY) == [name for name, _ in model.named_parameters()]
    payload["optimizer"] = _to_layout(current, model, commit)
    torch.save(payload, path)
    return current


def test_resuming_a_run_saved_before_the_stacking_continues_exactly(tmp_path, capsys):
    straight = str(tmp_path / "straight")
    assert main(["train", *SMALL, "--epochs", "2", "--output", straight]) == 0
    resumed = str(tmp_path / "resumed")
    assert main(["train", *SMALL, "--epochs", "1", "--output", resumed]) == 0
    _rewrite_last(resumed, "0cfc416")
    capsys.readouterr()
    assert main(["train", "--resume", resumed, "--epochs", "2"]) == 0
    assert "converted the checkpoint's optimizer state from the parameter layout of 0cfc416 and before" in (
        capsys.readouterr().out)
    a, b = _log(straight), _log(resumed)
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
    assert [r["valid"] for r in a] == [r["valid"] for r in b]
    # the checkpoint written after the resume has the current layout, named
    last = torch.load(os.path.join(resumed, "last.pt"), weights_only=True)
    straight_last = torch.load(os.path.join(straight, "last.pt"), weights_only=True)
    assert last[LAYOUT_KEY] == straight_last[LAYOUT_KEY]
    _assert_same_state(last["optimizer"], straight_last["optimizer"])


def test_resuming_an_unconvertible_checkpoint_says_why(tmp_path, capsys):
    folder = str(tmp_path / "run")
    assert main(["train", *SMALL, "--epochs", "1", "--output", folder]) == 0
    path = os.path.join(folder, "last.pt")
    payload = torch.load(path, weights_only=True)
    del payload[LAYOUT_KEY]
    group = payload["optimizer"]["param_groups"][0]
    group["params"] = group["params"][:-1]
    torch.save(payload, path)
    capsys.readouterr()
    assert main(["train", "--resume", folder, "--epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("asrec train: error: --resume: the checkpoint's optimizer state was written for ") and (
        "Resume it with the asrec version that wrote it" in err), err
