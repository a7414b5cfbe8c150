"""Listening: platform adapters, the poller and the scheduler."""
