"""`openear customer show|export|erase|propose-links`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from models.db import make_engine, session_factory
from models.orm import Author, Customer
from openear.cli import app
from openear.commands import customer_cmd
from tests.responders.factories import T0, make_author, make_mention

runner = CliRunner()
if not any(group.name == "customer" for group in app.registered_groups):  # until the registry lists it
    customer_cmd.register(app)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    db = tmp_path / "cli.db"
    path.write_text("brands:\n  - name: Acme\nweb:\n  secret_key: cli-test-secret-key-0123\n"
                    f"database:\n  url: sqlite:///{db}\n")
    assert runner.invoke(app, ["--config", str(path), "db", "upgrade"]).exit_code == 0
    engine = make_engine(f"sqlite:///{db}")
    with session_factory(engine).begin() as s:
        on_x = make_author(s, "jana_b", name="Jana Becker")
        make_author(s, "fb-jana", platform="facebook", name="Jana B.")
        make_mention(s, "router broken again", author=on_x, brand="Acme", created_at=T0 - timedelta(days=2))
    engine.dispose()
    return path


def test_propose_show_export_erase(config: Path, tmp_path: Path) -> None:
    base = ["--config", str(config), "customer"]
    proposed = runner.invoke(app, [*base, "propose-links"])
    assert proposed.exit_code == 0, proposed.output
    assert "x:jana_b ~ facebook:fb-jana" in proposed.output and "1 new proposals" in proposed.output
    assert runner.invoke(app, [*base, "export", "x:@jana_b"]).exit_code == 2  # not a customer yet
    shown = runner.invoke(app, [*base, "show", "x:@jana_b"])
    assert shown.exit_code == 0, shown.output
    assert "router broken again" in shown.output and "x: Jana Becker @jana_b" in shown.output
    out = tmp_path / "export.json"
    exported = runner.invoke(app, [*base, "export", "x:@jana_b", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    data = json.loads(out.read_text())
    assert data["mentions"][0]["text"] == "router broken again"
    refused = runner.invoke(app, [*base, "erase", str(data["customer"]["id"])], input="n\n")
    assert refused.exit_code != 0
    erased = runner.invoke(app, [*base, "erase", str(data["customer"]["id"]), "--yes"])
    assert erased.exit_code == 0, erased.output and "mentions 1" in erased.output
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with session_factory(engine)() as s:
        assert s.scalar(select(Customer)) is None
        assert [a.platform for a in s.scalars(select(Author))] == ["facebook"]
    engine.dispose()
