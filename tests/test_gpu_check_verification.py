"""Which (op, backend) pairs a GPU check run lists as exact (benchmarks/gpu_check/summary.py):
only a pair whose op passed at every planned shape and precision, with the model passing on
its backend at each of them; every other pair says why not."""

from benchmarks.gpu_check.summary import verified_pairs

PLAN = dict(kind="plan", device="cuda", shapes=["a", "b"], precisions=["highest", "high"],
            pairs=[["x", "triton"], ["y", "triton"], ["x", "cuda"]], missing={"triton": None, "cuda": None})


def _records(skip=(), fail=(), model_fail=()):
    lines = [PLAN]
    for shape in PLAN["shapes"]:
        for precision in PLAN["precisions"]:
            for backend in ("triton", "cuda"):
                for what in ("train step", "eval forward"):
                    lines.append(dict(kind="model", what=what, backend=backend, shape=shape, precision=precision,
                                      passed=(backend, shape, precision) not in model_fail))
            for op, backend in PLAN["pairs"]:
                if (op, backend, shape, precision) in skip:
                    continue
                lines.append(dict(kind="op", op=op, backend=backend, shape=shape, precision=precision,
                                  passed=(op, backend, shape, precision) not in fail, worst={"name": "out0"}))
    return lines


def test_every_pair_passing_everywhere_is_listed():
    passed, why_not = verified_pairs(_records())
    assert passed == [["x", "triton"], ["y", "triton"], ["x", "cuda"]] and why_not == {}


def test_one_failing_or_missing_combination_withholds_only_that_pair():
    passed, why_not = verified_pairs(_records(skip=[("y", "triton", "b", "high")], fail=[("x", "cuda", "a", "highest")]))
    assert passed == [["x", "triton"]]
    assert "not checked at b/high" in why_not["y/triton"]
    assert "failed at a/highest" in why_not["x/cuda"]


def test_a_model_failure_withholds_every_op_of_its_backend():
    passed, why_not = verified_pairs(_records(model_fail=[("triton", "b", "highest")]))
    assert passed == [["x", "cuda"]]
    assert all("the model's" in why_not[key] for key in ("x/triton", "y/triton"))


def test_an_absent_backend_verifies_nothing_and_says_why():
    plan = dict(PLAN, missing={"triton": None, "cuda": "not built"})
    passed, why_not = verified_pairs([plan] + _records()[1:])
    assert ["x", "cuda"] not in passed and why_not["x/cuda"] == "not run: not built"


def test_no_plan_line_verifies_nothing():
    assert verified_pairs([]) == ([], {})
