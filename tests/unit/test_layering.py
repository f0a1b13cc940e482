"""The dependency rules of docs/architecture.md, checked on the source."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "meetgate"
SANDBOX = ROOT / "sandbox" / "src" / "meetgate_sandbox"
#: the sandbox's modules that drive the product (the demo, the CLI commands, the pytest plugin's
#: Profile); everything else of the sandbox emulates Microsoft and must not borrow the client's code
SANDBOX_DRIVERS = {
    "demo.py",
    "demo_manual.py",
    "demo_calendar.py",
    "cli.py",
    "pytest_plugin.py",
    "gateway_scope.py",
}

# package -> meetgate packages it must never import
FORBIDDEN = {
    "graph": {"admin", "gateway", "store", "sandbox", "cli", "config", "certificates"},
    "admin": {"cli", "gateway", "sandbox"},
    "gateway": {"cli", "sandbox", "admin"},
    "store": {"cli", "sandbox", "admin", "gateway"},
    "composition": {"cli"},
}
#: single-module layers -> meetgate packages they must never import
FORBIDDEN_MODULES = {
    # config may use graph's pure validators (graph/identifiers.py), nothing that does I/O
    "config.py": {"admin", "gateway", "store", "sandbox", "cli", "composition", "certificates"},
    "errors.py": {
        "graph",
        "admin",
        "gateway",
        "store",
        "sandbox",
        "cli",
        "composition",
        "certificates",
        "config",
    },
    "private_files.py": {
        "graph",
        "admin",
        "gateway",
        "store",
        "cli",
        "composition",
        "certificates",
        "config",
    },
    "certificates.py": {"graph", "admin", "gateway", "store", "sandbox", "cli", "composition", "config"},
}
NO_UI = {"typer", "rich", "fastapi"}
ALLOWED: set[tuple[str, str]] = set()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layers_import_only_what_they_may():
    problems = []
    for package, forbidden in FORBIDDEN.items():
        for path in (SRC / package).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                if (str(path.relative_to(SRC)), name) in ALLOWED:
                    continue
                if parts[0] == "meetgate" and len(parts) > 1 and parts[1] in forbidden:
                    problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert not problems, problems


def test_config_errors_and_certificates_stand_alone():
    problems = [
        f"{module} imports {name}"
        for module, forbidden in FORBIDDEN_MODULES.items()
        for name in _imports(SRC / module)
        if name.split(".")[0] == "meetgate" and len(name.split(".")) > 1 and name.split(".")[1] in forbidden
    ]
    assert not problems, problems


def test_only_the_composition_root_builds_clients_and_stores():
    """CLI commands get Graph clients, stores and policy backends from meetgate.composition."""
    builders = (
        "GraphSettings(",
        "Store.open(",
        "PowerShellBackend(",
        "GraphPolicyBackend(",
        "RunRepository(Store",
    )
    problems = []
    for path in (SRC / "cli").rglob("*.py"):
        text = path.read_text()
        problems += [f"cli/{path.name} calls {b}" for b in builders if b in text and path.name != "demo.py"]
    assert not problems, problems


def test_every_error_of_ours_derives_from_the_one_root():
    """Exception classes of the product outside the sandbox derive from MeetgateError (the CLI catches
    that root); the private ones that never leave their module are listed."""
    import importlib
    import inspect

    from meetgate.errors import MeetgateError

    private = {"_CsvSyntaxError", "AdminAuthError", "TokenServiceHttpError", "Problem"}
    stray = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "sandbox" or "__main__" in path.name:
            continue
        tree = ast.parse(path.read_text())
        names = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
        if not names:
            continue
        module = importlib.import_module(
            "meetgate." + ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        )
        for name in names:
            cls = getattr(module, name)
            ours = inspect.isclass(cls) and issubclass(cls, BaseException) and name not in private
            if ours and not issubclass(cls, MeetgateError):
                stray.append(f"{relative}: {name}")
    assert not stray, stray


def test_the_product_never_imports_the_sandbox():
    problems = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] == "meetgate_sandbox"
    ]
    assert not problems, problems


def test_the_sandbox_uses_only_the_public_surface_and_emulates_on_its_own():
    problems = []
    for path in SANDBOX.rglob("*.py"):
        relative = str(path.relative_to(SANDBOX))
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "meetgate":
                continue
            if any(part.startswith("_") for part in parts):
                problems.append(f"{relative} imports the private {name}")
            elif (
                relative not in SANDBOX_DRIVERS
                and not relative.startswith("fakes/")  # test doubles of the product's own ports
                and name not in {"meetgate", "meetgate.certificates", "meetgate.errors"}
            ):
                problems.append(f"{relative} (emulator) imports {name}")
    assert not problems, problems


def test_admin_and_graph_do_no_ui():
    problems = []
    for package in ("admin", "graph"):
        for path in (SRC / package).rglob("*.py"):
            for name in _imports(path):
                if name.split(".")[0] in NO_UI:
                    problems.append(f"{path.relative_to(SRC)} imports {name}")
    assert not problems, problems
