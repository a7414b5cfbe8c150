"""The one exception tree of openear. Every error a person can act on descends from `OpenEarError`.

The message of each is written for the person who has to act (never a traceback, never a secret);
the CLI prints it and exits 2, the web app shows it on the page. Each layer defines its own leaves
in its own module, under the branch drawn here:

    OpenEarError                     models.errors: a problem a person can fix
    ├── ConfigError                  models.config_loader: config.yaml is wrong (file, key, line, hint)
    ├── DatabaseError                models.db: the database cannot be used as it is
    │   └── SchemaOutdated           migrations are missing: run `openear db upgrade`
    ├── ClassifierError              models.sentiment: the sentiment model cannot be built or loaded
    ├── PlatformError                listener.platforms.base: a platform refused or failed
    │   ├── RateLimited(retry_at)    try again at retry_at (`scope`: which limit)
    │   ├── AuthFailed               credentials are wrong, expired, of the wrong kind or lack a permission
    │   ├── TargetGone               the post, comment or account no longer exists
    │   ├── Transient                5xx, timeouts, broken bodies: retry later
    │   ├── Duplicate                the platform refused a copy of a post already there
    │   └── ContentRejected          the platform refused the text itself (too long by its count)
    ├── ServiceError                 responders.errors: an action the service refuses
    │   ├── NotFound                 the thing asked for does not exist
    │   ├── NotAllowed               the user's role does not allow it
    │   ├── Invalid                  the input is wrong (the message says how)
    │   ├── Conflict                 someone else holds or just changed it (ClaimConflict)
    │   └── Busy                     try again in a moment (SignInBusy, Throttled(retry_after))
    └── UsageError                   openear.context: a command line that cannot work as given

Programming errors (TypeError, KeyError, ...) are not in the tree: they are bugs and keep their
traceback.
"""

from __future__ import annotations


class OpenEarError(Exception):
    """A problem a person can fix; str() is the message for them."""
