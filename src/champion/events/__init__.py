"""The request log and (later) the feedback ledger."""

from champion.events.ids import RequestIds
from champion.events.writer import EventWriter

__all__ = ["EventWriter", "RequestIds"]
