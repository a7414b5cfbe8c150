"""pyproject.toml's package data names exactly the non-Python files the installed packages need."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# folders whose files an installed openear reads at run time: page and mail templates, the web app's
# static files, alembic's script template, the classifier's weights
DATA_DIRS = {"templates", "static", "migrations", "assets"}


def _setuptools() -> dict[str, object]:
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert isinstance(table, dict)
    return table


def _package_dir(package: str) -> Path:
    return ROOT.joinpath(*package.split("."))


def _package_data() -> dict[str, list[str]]:
    data = _setuptools().get("package-data", {})
    assert isinstance(data, dict)
    return data


def _packages() -> list[str]:
    packages = _setuptools()["packages"]
    assert isinstance(packages, list)
    return packages


def _matches(package: str, pattern: str) -> set[Path]:
    # setuptools resolves each glob against the package's folder; "" and "*" mean every package
    targets = _packages() if package in ("", "*") else [package]
    return {path for target in targets for path in _package_dir(target).glob(pattern) if path.is_file()}


def test_every_package_data_glob_matches_a_file() -> None:
    empty = [f"{package}: {pattern}" for package, patterns in _package_data().items() for pattern in patterns
             if not _matches(package, pattern)]
    assert not empty, "package-data globs in pyproject.toml that match no file:\n" + "\n".join(empty)


def test_package_data_keys_are_packages() -> None:
    unknown = [package for package in _package_data() if package not in ("", "*") and package not in _packages()]
    assert not unknown, f"package-data for packages that [tool.setuptools] packages does not list: {unknown}"


def test_every_data_file_of_the_packages_is_covered_by_a_glob() -> None:
    covered = {path for package, patterns in _package_data().items() for pattern in patterns
               for path in _matches(package, pattern)}
    tops = sorted({package.split(".")[0] for package in _packages()})
    missing = []
    for top in tops:
        for path in sorted(_package_dir(top).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in parts:
                continue
            if DATA_DIRS.intersection(parts[:-1]) and path not in covered:
                missing.append(str(path.relative_to(ROOT)))
    assert not missing, "data files no package-data glob in pyproject.toml names (they would not be installed):\n" \
        + "\n".join(missing)


def test_the_checks_see_the_known_files() -> None:
    """Not vacuous: the web app's base template and alembic's script template are found and covered."""
    covered = {path.relative_to(ROOT).as_posix() for package, patterns in _package_data().items()
               for pattern in patterns for path in _matches(package, pattern)}
    assert {"responders/web/templates/base.html", "models/migrations/script.py.mako",
            "openear/templates/config.yaml"} <= covered


def test_every_package_folder_is_listed() -> None:
    """A package missing from `packages` is silently left out of the wheel (its imports fail once installed)."""
    tops = sorted({package.split(".")[0] for package in _packages()})
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in tops for init in (ROOT / top).rglob("__init__.py")}
    missing = sorted(found - set(_packages()))
    assert not missing, f"packages with an __init__.py that [tool.setuptools] packages omits: {missing}"
