"""Facebook pages through facebook-sdk: the adapter (adapter.py), its poll cursor (cursor.py), the cursor
walk of one poll (reading.py), Graph items as MentionData (mapping.py) and Graph errors (errors.py)."""

from listener.platforms.facebook.adapter import NAME, FacebookPage, FacebookPlatform, from_config, normalize_version
from listener.platforms.facebook.cursor import FacebookCursor, Gap, PostMark

__all__ = ["NAME", "FacebookCursor", "FacebookPage", "FacebookPlatform", "Gap", "PostMark", "from_config",
           "normalize_version"]
