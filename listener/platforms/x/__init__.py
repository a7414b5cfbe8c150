"""X (Twitter) through tweepy: the adapter (adapter.py), what X's posts and errors mean (reading.py,
errors.py) and the poll cursor (cursor.py)."""

from listener.platforms.x.adapter import NAME, XBrand, XPlatform, from_config
from listener.platforms.x.cursor import XCursor

__all__ = ["NAME", "XBrand", "XCursor", "XPlatform", "from_config"]
