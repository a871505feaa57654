"""The package's import structure, read from the source with ``ast`` (nothing is imported):
no import circle inside ``asrec`` (lazy imports inside functions count too: a circle through
them is still a circle a reader has to follow), nothing below the command line imports
``asrec.cli``, and the floors of DESIGN.md hold (kernels and reference import nothing above
them, ``asrec.backends`` nothing of ``asrec.ops``)."""

import ast
import pathlib

import asrec

PACKAGE = pathlib.Path(asrec.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = ("asrec",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> set:
    """The asrec modules ``module`` imports: ``from x import y`` counts as importing the
    submodule ``x.y`` where there is one, else ``x`` itself."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in MODULES else source)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imports(module) for module in MODULES}


def _cycle():
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(module, path):
        state[module] = "open"
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path)
                if found:
                    return found
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(GRAPH):
        if module not in state:
            found = visit(module, [])
            if found:
                return found
    return None


def _reachable(module: str) -> set:
    seen, stack = set(), [module]
    while stack:
        for target in GRAPH[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_graph_is_read():
    assert "asrec.ops.input_stage" in GRAPH["asrec.ops"]
    assert "asrec.backends" in GRAPH["asrec.ops.input_stage"]
    assert "asrec.errors" in GRAPH["asrec.cli"]


def test_no_import_circle():
    cycle = _cycle()
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_nothing_below_the_command_line_imports_it():
    command_line = {"asrec.cli", "asrec.__main__"}
    offenders = sorted(module for module, targets in GRAPH.items()
                       if module not in command_line and "asrec.cli" in targets)
    assert offenders == []


# what each low floor may import (the reference is the kernels' floor below: constants, the mask rule;
# asrec.distributed_filter, a leaf that imports nothing of asrec, holds the deal a filter call's
# threshold gathers over under torchrun, which the reference filter reads as every backend does)
LEAVES = ("asrec.distributed_filter",)
FLOORS = {"reference": ("asrec.reference", *LEAVES), "kernels": ("asrec.kernels", "asrec.reference", *LEAVES)}


def test_floors():
    for module in GRAPH:
        floor = module.split(".")[1] if module.count(".") else ""
        if floor in FLOORS:
            above = sorted(t for t in _reachable(module) if not t.startswith(FLOORS[floor]))
            assert above == [], f"{module} imports {above}"
    assert not any(t.startswith("asrec.ops") for t in _reachable("asrec.backends"))
    for leaf in LEAVES:
        assert not any(t.startswith("asrec") for t in _reachable(leaf)), f"{leaf} must import nothing of asrec"
    assert "asrec.cli" not in _reachable("asrec")
