"""The recorder's meters live in :mod:`quantlab.meters` (shared with ``Lab``)."""

from quantlab.meters import LatencyWindow, RateMeter

__all__ = ["LatencyWindow", "RateMeter"]
