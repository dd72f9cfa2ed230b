"""Capture a function, with what it uses, as a version artifact."""

from champion.capture.function import Captured, capture

__all__ = ["Captured", "capture"]
