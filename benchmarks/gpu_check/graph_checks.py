"""The CUDA-graph checks of the GPU check (``steps/graphs.py``), one function each: (shape,
device) -> {"passed", ...}; each runs under the backend its caller selects."""

import copy

import torch

from asrec.graphs import GraphedScores, GraphedTrainStep

from . import plan


def _close(a, b) -> bool:
    return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6))


def _replay_equals_eager(shape, dev) -> dict:
    model, items, lengths, targets = plan.model_and_batch(shape, dev)
    twin = copy.deepcopy(model)
    graphed = GraphedTrainStep(model.train(), torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True))
    eager = GraphedTrainStep(twin.train(), torch.optim.Adam(twin.parameters(), lr=1e-3, capturable=True),
                             graphs=False)
    torch.manual_seed(7)
    graphed_loss = graphed(items, lengths, targets).clone()
    torch.manual_seed(7)
    eager_loss = eager(items, lengths, targets)
    differing = [name for (name, p), q in zip(model.named_parameters(), twin.parameters()) if not _close(p, q)]
    passed = graphed.captured == 1 and _close(graphed_loss, eager_loss) and not differing
    return dict(passed=passed, captured=graphed.captured, loss=graphed_loss.item(), eager_loss=eager_loss.item(),
                parameters_differing=differing[:5])


def _fresh_masks(shape, dev) -> dict:
    model, items, lengths, targets = plan.model_and_batch(shape, dev)
    step = GraphedTrainStep(model.train(), torch.optim.Adam(model.parameters(), lr=0.0, capturable=True))
    losses = [step(items, lengths, targets).item() for _ in range(3)]
    return dict(passed=step.captured == 1 and len(set(losses)) == 3, losses=losses)


def _scores_equal_eager(shape, dev) -> dict:
    model, items, lengths, _ = plan.model_and_batch(shape, dev)
    model.eval()
    scores = GraphedScores(model)
    graphed = [scores(items, lengths).clone() for _ in range(2)]
    with torch.no_grad():
        eager = model.full_sort_scores(items, lengths)
    return dict(passed=scores.captured == 1 and all(_close(g, eager) for g in graphed))


def _no_host_sync(shape, dev) -> dict:
    model, items, lengths, targets = plan.model_and_batch(shape, dev)
    step = GraphedTrainStep(model.train(), torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True),
                            graphs=False)
    step(items, lengths, targets)  # cached constants built before the audit
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(items, lengths, targets)
        model.eval()
        with torch.no_grad():
            model.full_sort_scores(items, lengths)
    except RuntimeError as error:
        return dict(passed=False, reason=" ".join(str(error).split())[:300])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return dict(passed=True)


CHECKS = {"replay equals eager": _replay_equals_eager, "fresh dropout masks per replay": _fresh_masks,
          "graphed scores equal eager": _scores_equal_eager, "no host synchronisation": _no_host_sync}
