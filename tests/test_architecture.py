"""The layout stays the one docs/architecture.md maps: areas without import cycles, one module that talks
HTTP to the upstream, modules small enough to read, and URLs that are only includes of the areas'."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("tasks", "sandbox")
MAX_LINES = 500
# Data tables, not logic: long because the data is.
LONG_DATA_TABLES = {
    "tasks/management/commands/generate_tasks.py",  # sample prompts, tags and answers for a demo database
    "tasks/models.py",  # the models and their field choices
}
AREAS = (
    "upstream",
    "builder",
    "submission",
    "prompt_templates",
    "history",
    "spend",
    "team",
    "visibility",
    "monitors",
)


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The product modules a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from tasks.history import selectors` imports the module tasks.history.selectors
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {name: _imports(path) for name, path in MODULES.items()}
    for name, path in MODULES.items():  # an empty package __init__ ties nothing together
        if path.name == "__init__.py" and not path.read_text().strip():
            graph[name] = set()
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_product_module_imports_itself_back():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_upstream_package_imports_requests():
    importers = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(module == "requests" or module.startswith("requests.") for module in modules):
                importers.add(name)
    assert importers and all(name.startswith("tasks.upstream.") for name in importers), importers


def test_no_product_module_is_over_500_lines_except_data_tables():
    long = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in MODULES.values()
        if len(path.read_text().splitlines()) > MAX_LINES
    }
    assert set(long) <= LONG_DATA_TABLES, long


def test_the_product_urls_only_include_the_areas():
    tree = ast.parse((ROOT / "tasks" / "urls.py").read_text())
    (assignment,) = [node for node in tree.body if isinstance(node, ast.Assign)]
    included = []
    for entry in assignment.value.elts:
        assert isinstance(entry, ast.Call) and ast.unparse(entry).startswith("path('', include(")
        included.append(entry.args[1].args[0].value)
    assert sorted(included) == sorted(f"tasks.{area}.urls" for area in AREAS if area != "upstream")


@pytest.mark.parametrize("area", [area for area in AREAS if area != "upstream"])
def test_each_area_has_namespaced_urls_templates_and_tests(area):
    urls = ast.parse((ROOT / "tasks" / area / "urls.py").read_text())
    names = {target.id for node in urls.body if isinstance(node, ast.Assign) for target in node.targets}
    assert "app_name" in names
    assert (ROOT / "tests" / area).is_dir()
    if area != "submission":  # callbacks answer the upstream, with no page
        assert (ROOT / "templates" / "tasks" / area).is_dir()
