"""The live runtime in a kernel: :class:`Lab` follows a store while a recorder writes it."""

from quantlab.live.align import align_closes
from quantlab.live.bars import IncrementalBars
from quantlab.live.lab import TIMEFRAMES, Lab
from quantlab.live.ring import TickRing

__all__ = ["Lab", "TIMEFRAMES", "IncrementalBars", "TickRing", "align_closes"]
