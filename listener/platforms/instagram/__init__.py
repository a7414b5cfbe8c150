"""Instagram professional accounts through facebook-sdk (Graph API, Facebook login): the adapter
(adapter.py), its poll cursor (cursor.py), the walk of one poll (reading.py) and Graph items as
MentionData (mapping.py). Graph errors are translated by the Facebook package's table."""

from listener.platforms.instagram.adapter import NAME, InstagramAccount, InstagramPlatform, from_config
from listener.platforms.instagram.cursor import InstagramCursor, MediaMark

__all__ = ["NAME", "InstagramAccount", "InstagramCursor", "InstagramPlatform", "MediaMark", "from_config"]
