"""The always-on recorder: feed -> gap repair -> store, live counters, alerts."""

from quantlab.recorder.sequencer import Sequencer
from quantlab.recorder.service import Recorder, RecorderConfig, recorder_alive

__all__ = ["Recorder", "RecorderConfig", "Sequencer", "recorder_alive"]
