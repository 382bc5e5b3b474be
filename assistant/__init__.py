"""Offline voice-controlled music recommendation assistant."""

__version__ = "0.1.0"
