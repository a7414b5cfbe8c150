"""The one list of audit actions: every writer uses it, `record` refuses anything else, and the audit
page filters by each action."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from responders import audit
from tests.responders.factories import T0, login, make_user

Client = Callable[[], TestClient]
ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("models", "listener", "responders", "openear", "sandbox")


def _product_files() -> list[Path]:
    return [p for top in PRODUCT for p in (ROOT / top).rglob("*.py") if "migrations" not in p.parts]


def test_record_refuses_an_action_that_is_not_in_the_list(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, pytest.raises(ValueError, match=r"not in responders\.audit\.ACTIONS"):
        audit.record(s, "answered_somehow", "queue_item", 1, user_id=None, at=T0)


def test_every_audit_row_is_written_through_record_with_a_listed_constant() -> None:
    """No module builds AuditEvent rows itself, and every record() call names one of audit's constants."""
    constants = {name for name, value in vars(audit).items() if isinstance(value, str) and value in audit.ACTIONS}
    assert len(constants) == len(audit.ACTIONS), "each action has exactly one constant"
    raw, loose = [], []
    calls = 0
    for path in _product_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name == "AuditEvent" and where != Path("responders/audit.py"):
                raw.append(f"{where}:{node.lineno}")
            if name == "record" and isinstance(node.func, ast.Attribute) and \
                    getattr(node.func.value, "id", None) == "audit":
                calls += 1
                action = node.args[1]
                named = action.attr if isinstance(action, ast.Attribute) else getattr(action, "id", None)
                if named not in constants and named != "action":  # a variable: record() checks it when it runs
                    loose.append(f"{where}:{node.lineno}: {ast.unparse(action)}")
    assert calls >= 30, f"the scan found only {calls} record() calls: it is not looking where they are"
    assert not raw, f"AuditEvent rows built outside responders/audit.py: {raw}"
    assert not loose, f"record() with an action that is not one of audit's constants: {loose}"


def test_the_audit_page_offers_and_filters_every_action(sessions: sessionmaker[Session], new_client: Client) -> None:
    with sessions.begin() as s:
        make_user(s, "boss", "manager")
        for i, action in enumerate(audit.ACTIONS):
            audit.record(s, action, "queue_item", 1000 + i, user_id=None, at=T0)
    boss = login(new_client(), "boss")
    page = boss.get("/audit").text
    offered = re.findall(r'<option value="([a-z_]+)"', page)
    assert [a for a in offered if a in audit.ACTIONS] == list(audit.ACTIONS)
    for i, action in enumerate(audit.ACTIONS):
        html = boss.get(f"/audit?action={action}").text
        pills = set(re.findall(r'class="pill a-([a-z_]+)"', html))
        assert pills == {action}, (action, pills)
        assert f"queue item {1000 + i}" in html
        assert audit.ACTIONS[action] in html
