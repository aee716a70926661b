"""The house rules of CONTRIBUTING.md that a test can hold: layering, errors, routes.

The layering contracts live in pyproject.toml and are checked by import-linter. Here they are
run on a copy of the code, clean and then with a rule broken on purpose, so that a contract
that could never fail (a misspelt module, a wildcard matching nothing) is caught too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.registry import SERVICES
from shared.problems import Problem

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_of_the_code(into: Path) -> Path:
    for package in ("shared", "services"):
        shutil.copytree(ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, so the contracts are checked against it, not the checkout.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_of_the_code(tmp_path_factory.mktemp("pristine"))


def test_the_code_keeps_every_layering_contract(pristine: Path) -> None:
    result = _lint_imports(pristine)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kept, 0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "services/complaints/sla.py",
            "import sqlalchemy",
            "Pure domain modules import neither the web framework nor the database layer",
        ),
        (
            "services/segmentation/rfm.py",
            "from fastapi import FastAPI",
            "Pure domain modules import neither the web framework nor the database layer",
        ),
        (
            "services/notify/policy.py",
            "from services.customer import ids",
            "No service imports another service",
        ),
        ("shared/outbox.py", "import services.complaints.models", "The shared library imports no service"),
    ],
)
def test_a_broken_rule_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = _copy_of_the_code(tmp_path)
    _append(tree / module, line)
    result = _lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout


ROUTE_MODULES = sorted(path for service in SERVICES for path in (ROOT / "services" / service).glob("*api.py"))
DATABASE_ERRORS = {"IntegrityError", "DBAPIError", "OperationalError", "SQLAlchemyError", "NoResultFound"}


def _database_errors_handled(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy.exc"):
            found.append(f"line {node.lineno}: imports sqlalchemy.exc")
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            names = {n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in ast.walk(node.type)}
            if names & DATABASE_ERRORS:
                found.append(f"line {node.lineno}: catches {sorted(names & DATABASE_ERRORS)}")
    return found


def test_the_route_check_sees_a_route_catching_a_database_error() -> None:
    caught = "from sqlalchemy.exc import IntegrityError\ntry:\n    pass\nexcept IntegrityError:\n    pass\n"
    assert _database_errors_handled(caught) == [
        "line 1: imports sqlalchemy.exc",
        "line 4: catches ['IntegrityError']",
    ]


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_route_catches_a_database_error(path: Path) -> None:
    assert len(ROUTE_MODULES) >= 4
    assert _database_errors_handled(path.read_text()) == [], "a domain error belongs in the service layer"


def _named_errors(service: str) -> list[type[Problem]]:
    module = importlib.import_module(f"services.{service}.errors")
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Problem) and value.__module__ == module.__name__
    ]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_names_its_errors_with_their_own_problem_type(service: str) -> None:
    named = _named_errors(service)
    assert named, f"services/{service}/errors.py names no error"
    for error in named:
        assert 400 <= error.status < 500, error
        base: type[Problem] = error.__mro__[1]
        assert base is Problem or error.slug != base.slug, (
            f"{error.__name__} keeps the generic type {base.slug}"
        )
    slugs = [error.slug for error in named]
    assert len(slugs) == len(set(slugs)), f"{service}: two errors share a problem type: {slugs}"


def test_an_extension_may_not_take_the_name_of_a_problem_member() -> None:
    with pytest.raises(TypeError, match="status"):
        Problem("clash", status="resolved")
