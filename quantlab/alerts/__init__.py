"""Alerts: price, move, z-score and spread rules evaluated live by the recorder.

Rules live in ``<store>/alerts/rules.json`` (edit them with :func:`add_rule` /
:func:`remove_rule`, or ``quantlab alerts add|list|rm``); the recorder's
:class:`AlertService` evaluates them on every stored batch of trades (price, move) or closed
bar (z-score, spread), appends fired alerts to ``<store>/alerts/history.jsonl`` and posts
them to the rule's webhook in the background. Notebooks read the history::

    import quantlab as ql
    ql.alerts.add_rule("data/store", ql.alerts.PriceRule(symbol="BTCUSDT", op="above", level=70_000))
    h = ql.alerts.AlertHistory("data/store")
    h.read()      # DataFrame of fired alerts
    h.poll()      # alerts fired since the previous poll (for toasts)
"""

from quantlab.alerts.engine import AlertEngine, Trigger, scan
from quantlab.alerts.persistence import (
    AlertHistory,
    FiredAlert,
    add_rule,
    alerts_frame,
    list_rules,
    remove_rule,
)
from quantlab.alerts.rules import (
    MoveRule,
    PriceRule,
    Rule,
    SpreadRule,
    ZScoreRule,
    rule_from_dict,
)
from quantlab.alerts.service import AlertService
from quantlab.alerts.webhook import DeliveryResult, WebhookDispatcher

__all__ = [
    "AlertEngine",
    "AlertHistory",
    "AlertService",
    "DeliveryResult",
    "FiredAlert",
    "MoveRule",
    "PriceRule",
    "Rule",
    "SpreadRule",
    "Trigger",
    "WebhookDispatcher",
    "ZScoreRule",
    "add_rule",
    "alerts_frame",
    "list_rules",
    "remove_rule",
    "rule_from_dict",
    "scan",
]
