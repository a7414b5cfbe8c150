"""The review queue web app (FastAPI, server-rendered Jinja2). Build it with `create_app`."""

from responders.web.app import create_app

__all__ = ["create_app"]
