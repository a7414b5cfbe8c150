"""The web app as openear serves it: the review queue, the ops endpoints and the dispatcher hook."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from openear.app import OpenEar
from responders.ops import ops_router
from responders.web.app import create_app

log = logging.getLogger(__name__)


def build_web_app(openear: OpenEar) -> FastAPI:
    """The FastAPI app wired to this OpenEar: replies are sent as soon as an agent queues them."""
    app = create_app(openear.config, openear.sessions, clock=openear.clock, on_reply_queued=openear.reply_queued,
                     moderate=openear.hide, embedder=openear.embedder)
    app.include_router(ops_router(openear.sessions, openear.engine, openear.clock))
    return app


def serve(openear: OpenEar, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both and returns)."""
    web = openear.config.web
    uvicorn.run(build_web_app(openear), host=host or web.host, port=port or web.port, log_level="warning",
                access_log=False, log_config=None)  # uvicorn's loggers go through ours (--log-format)
