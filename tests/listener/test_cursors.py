"""The poll cursors as dataclasses: stored text in, the same text out (cursors stored by earlier
versions stay valid), drains spelled out, unreadable text a fresh start."""

from __future__ import annotations

import json

import pytest

from listener.platforms.facebook.cursor import FacebookCursor, Gap, PostMark
from listener.platforms.x.cursor import XCursor

# written by the 0.x adapters (listener/platforms/facebook.py before the package split)
STORED_FACEBOOK = ('{"p":{"111_1":[1764000000,3,1764000500,["111_1_9"]],'
                   '"111_2":[1764000100,250,1764000900,["111_2_7","111_2_8"],'
                   '[[1764000100,[],1764000400,["111_2_3"]]]]},"v":1}')


def test_x_cursor_is_a_plain_since_id_unless_draining() -> None:
    assert XCursor.parse(None) == XCursor() and XCursor().dump() is None
    assert XCursor.parse("1861") == XCursor(since="1861") and XCursor(since="1861").dump() == "1861"
    draining = '{"since": "100", "until": "250", "newest": "900"}'
    parsed = XCursor.parse(draining)
    assert parsed == XCursor("100", "250", "900")
    assert json.loads(parsed.dump() or "") == {"since": "100", "until": "250", "newest": "900"}
    assert XCursor.parse('{"since": null, "until": "250", "newest": "900"}') == XCursor(None, "250", "900")


@pytest.mark.parametrize("text", ['{"since": 5}', "{not json", '{"until": ["a"]}'])
def test_an_unreadable_x_cursor_is_a_fresh_start(text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert XCursor.parse(text) == XCursor()
    assert "unreadable cursor" in caplog.text


def test_a_stored_facebook_cursor_reads_into_marks_and_writes_back_unchanged() -> None:
    cursor = FacebookCursor.parse(STORED_FACEBOOK)
    assert cursor.posts["111_1"] == PostMark(1764000000, 3, 1764000500, ("111_1_9",))
    assert cursor.posts["111_2"] == PostMark(1764000100, 250, 1764000900, ("111_2_7", "111_2_8"),
                                             (Gap(1764000100, (), 1764000400, ("111_2_3",)),))
    assert cursor.dump() == STORED_FACEBOOK


@pytest.mark.parametrize("text", ['{"v":1,"p":{"1":[1,2,3]}}', '{"v":1,"p":{"1":[1,2,3,"ids"]}}',
                                  '{"v":1,"p":{"1":[1,2,3,[],[[1,[],2]]]}}', "[]", "garbage"])
def test_an_unreadable_facebook_cursor_is_a_fresh_start(text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert FacebookCursor.parse(text, "facebook:acme:page:1") == FacebookCursor()
    assert "unreadable cursor of facebook:acme:page:1" in caplog.text
