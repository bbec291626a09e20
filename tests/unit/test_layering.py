"""The package's imports run one way: domain <- ledger <- service <- api/reporter <- app/cli.

A module may import its own layer and the layers below it, never one above:
a rule that lives only in a drawing is broken by the next hurried change.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rating_service"

LAYERS = {
    "domain": 0,
    "ledger": 1,
    "service": 2,
    "api": 3,
    "reporter": 3,
    "config": 4,
    "bootstrap": 4,
    "app": 4,
    "cli": 4,
    "status": 4,
    "__main__": 4,
    "testing": 4,
}
"""The layer of each top-level part of ``rating_service``; higher layers may import lower ones."""

LEAVES = {"metrics", "logs", "tracing", "ratelimit"}
"""Modules any layer may import, because they import nothing of the package themselves."""

DOMAIN_MAY_IMPORT = {
    "__future__",
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "itertools",
    "json",
    "math",
    "re",
    "typing",
}
"""The standard library's pure parts: the domain does no I/O and reads no clock."""


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts and not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))
    )


def _part(module: str) -> str:
    """``rating_service.ledger.session`` -> ``ledger``; ``rating_service.cli`` -> ``cli``."""
    return module.split(".")[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    module_parts = ["rating_service", *path.relative_to(PACKAGE).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts.pop()
    package = module_parts if path.name == "__init__.py" else module_parts[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            if node.module is None or name in ("rating_service",):
                found.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
    return found


def _own(path: Path) -> str:
    return _part(".".join(["rating_service", *path.relative_to(PACKAGE).with_suffix("").parts]))


def test_every_part_of_the_package_has_a_layer() -> None:
    """A new top-level module or package must be placed in a layer before it can be imported."""
    parts = {_own(p) for p in _modules() if p.parent != PACKAGE or p.name != "__init__.py"}
    assert parts <= set(LAYERS) | LEAVES, sorted(parts - set(LAYERS) - LEAVES)


def test_no_import_runs_up_the_layers() -> None:
    """domain <- ledger <- service <- api/reporter <- app/cli/config/bootstrap."""
    wrong: list[str] = []
    for path in _modules():
        own = _own(path)
        if own == "__init__":
            continue
        for line, name in _imports(path):
            if not name.startswith("rating_service.") or name == "rating_service.__init__":
                continue
            target = _part(name)
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            if own in LEAVES:
                wrong.append(f"{where} (a leaf imports nothing of the package)")
            elif target not in LEAVES and LAYERS.get(target, 99) > LAYERS.get(own, -1):
                wrong.append(f"{where} ({own} is below {target})")
    assert wrong == []


def test_the_domain_imports_no_io() -> None:
    """The domain imports only the standard library's pure modules and itself."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in (PACKAGE / "domain").rglob("*.py")
        for line, name in _imports(path)
        if name.split(".")[0] not in DOMAIN_MAY_IMPORT
        and not name.startswith("rating_service.domain")
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("source", "imported"),
    [
        ("domain/probe.py", "from rating_service.ledger.schema import outcomes"),
        ("ledger/probe.py", "from rating_service.reporter import plan"),
        ("ledger/probe.py", "from ..service import store"),
        ("metrics.py", "from rating_service.api import interceptors"),
    ],
)
def test_the_layering_check_catches_an_upward_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, imported: str
) -> None:
    """The check itself can fail: a planted upward import is reported."""
    fake = tmp_path / "rating_service"
    probe = fake / source
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(f"{imported}\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError):
        test_no_import_runs_up_the_layers()
