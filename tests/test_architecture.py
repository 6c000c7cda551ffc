"""The shape of the code, checked: no import cycle between project modules (imports inside
functions and under TYPE_CHECKING count too), no private name imported from another module,
and an engine that runs without Django."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("recsite", "recommendations", "bulletins", "integrations")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            name = ".".join(relative.with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = project_modules()


def imports_of(name: str, path: Path) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import statement anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = name.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found += [(module, alias.name) for alias in node.names]
    return found


def project_target(module: str, imported: str | None) -> str | None:
    """The project module an import loads: `from a.b import c` loads a.b.c if c is a module."""
    if imported and f"{module}.{imported}" in MODULES:
        return f"{module}.{imported}"
    return module if module in MODULES else None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, imported in imports_of(name, path):
            target = project_target(module, imported)
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_project_modules():
    assert cycles(import_graph()) == []


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{name} imports {imported} from {module}"
        for name, path in MODULES.items()
        for module, imported in imports_of(name, path)
        if imported
        and imported.startswith("_")
        and project_target(module, None)
        and project_target(module, None) != name
    ]
    assert private == []


def test_the_engine_imports_nothing_of_django_or_the_apps():
    engine = {name: path for name, path in MODULES.items() if ".engine" in name}
    assert engine
    for name, path in engine.items():
        for module, _ in imports_of(name, path):
            assert not module.startswith("django"), name
            assert not module.startswith(("recsite", "bulletins", "integrations")), name
            if module.startswith("recommendations."):
                assert module.startswith("recommendations.engine"), f"{name} imports {module}"
