"""``quantlab alerts add|list|rm|history``: manage the alert rules of a store, read its alerts.

    quantlab alerts add --store DIR --symbol BTCUSDT --above 70000 [--cooldown S] [--webhook URL]
    quantlab alerts add --store DIR --symbol BTCUSDT --below 60000 | --cross 65000
    quantlab alerts add --store DIR --symbol SOLUSDT --move 2.5 [--over 5m] [--direction up]
    quantlab alerts add --store DIR --pair ETHUSDT,BTCUSDT --zscore 2.5 [--window N] [--timeframe 1m]
    quantlab alerts add --store DIR --pair ETHUSDT,BTCUSDT --spread-above 120 [--window N]
    quantlab alerts list [--json]
    quantlab alerts rm ID [ID ...]
    quantlab alerts history [--json] [--rule ID] [--last N]

A running recorder picks rule changes up within a second. Bad rules (unknown symbol,
non-numeric level, window < 2 ...) are refused with a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from quantlab.config import parse_symbols, settings

NAME = "alerts"
HELP = "add, list or remove alert rules of a store (evaluated by the recorder); show fired alerts"

_PRICE_OPS = ("above", "below", "cross")


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="store directory (default: $QUANTLAB_STORE or ./data/store)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add a rule", description="Add an alert rule to a store.")
    _store_arg(add)
    what = add.add_argument_group("what to watch (one of)")
    what.add_argument("--symbol", help="one symbol, for --above/--below/--cross/--move")
    what.add_argument("--pair", metavar="Y,X", help="two symbols, for --zscore/--spread-above/--spread-below")
    cond = add.add_argument_group("condition (one of)")
    cond.add_argument("--above", metavar="PRICE", help="price at or above PRICE")
    cond.add_argument("--below", metavar="PRICE", help="price at or below PRICE")
    cond.add_argument("--cross", metavar="PRICE", help="each crossing of PRICE, either way")
    cond.add_argument("--move", metavar="PCT", help="percent move of the price over --over")
    cond.add_argument("--zscore", metavar="K", help="pair z-score beyond ±K")
    cond.add_argument("--spread-above", metavar="LEVEL", help="pair spread at or above LEVEL")
    cond.add_argument("--spread-below", metavar="LEVEL", help="pair spread at or below LEVEL")
    opt = add.add_argument_group("options")
    opt.add_argument("--over", default=None, help="window of --move, e.g. 30s, 5m, 1h (default 5m)")
    opt.add_argument("--direction", default=None, help="--move direction: up, down or any (default)")
    opt.add_argument("--window", default=None, help="pair rules: bars in the hedge/z-score window (default 60)")
    opt.add_argument("--timeframe", default=None, help="pair rules: bar timeframe (default 1m)")
    opt.add_argument("--method", default=None, help="pair rules: hedge rolling_ols|expanding_ols|kalman|ols|huber|theilsen (default rolling_ols)")
    opt.add_argument("--exit", default=None, help="--zscore: also alert when |z| is back to EXIT or less")
    opt.add_argument("--cooldown", default="0", help="seconds during which the rule does not fire again")
    opt.add_argument("--hysteresis", default=None,
                     help="how far back past the threshold before re-arming, in the rule's unit "
                          "(default: 0.1%% of a price level, pct/4, 0.5 z, 0 spread)")
    opt.add_argument("--webhook", default=None, help="URL to POST each alert to (JSON)")
    opt.add_argument("--id", default="", help="rule id (default: r<N>)")
    opt.add_argument("--note", default="", help="text appended to the alert message")

    ls = sub.add_parser("list", help="list rules", description="List the alert rules of a store.")
    _store_arg(ls)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")

    rm = sub.add_parser("rm", help="remove rules", description="Remove alert rules by id.")
    _store_arg(rm)
    rm.add_argument("ids", nargs="+", metavar="ID")

    hist = sub.add_parser("history", help="fired alerts", description="Show the fired alerts of a store.")
    _store_arg(hist)
    hist.add_argument("--json", action="store_true", help="one JSON object per line")
    hist.add_argument("--rule", default=None, help="only this rule id")
    hist.add_argument("--last", default=None, help="only the last N alerts")


def build_rule(args: argparse.Namespace) -> Any:
    """The rule described by ``alerts add`` flags (ValueError on a bad combination)."""
    from quantlab.alerts.rules import MoveRule, PriceRule, SpreadRule, ZScoreRule

    conds = {name: getattr(args, name.replace("-", "_")) for name in
             (*_PRICE_OPS, "move", "zscore", "spread-above", "spread-below")}
    given = [name for name, v in conds.items() if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one condition: --above, --below, --cross, --move, "
                         f"--zscore, --spread-above or --spread-below (got {len(given)})")
    cond = given[0]
    value = conds[cond]
    common: dict[str, Any] = {"id": args.id or "", "cooldown": args.cooldown,
                              "hysteresis": args.hysteresis, "webhook": args.webhook,
                              "note": args.note or ""}
    if cond in _PRICE_OPS or cond == "move":
        if args.pair or not args.symbol:
            raise ValueError(f"--{cond} needs --symbol SYMBOL (not --pair)")
        for flag in ("window", "timeframe", "method", "exit"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag} applies to --pair rules only")
        symbols = parse_symbols(args.symbol)
        if len(symbols) != 1:
            raise ValueError(f"--symbol: expected one symbol, got {args.symbol!r}")
        if cond == "move":
            return MoveRule(symbol=symbols[0], pct=value, window=args.over or "5m",
                            direction=args.direction or "any", **common)
        if args.over is not None or args.direction is not None:
            raise ValueError("--over and --direction apply to --move only")
        return PriceRule(symbol=symbols[0], op=cond, level=value, **common)
    if args.symbol or not args.pair:
        raise ValueError(f"--{cond} needs --pair Y,X (not --symbol)")
    if args.over is not None or args.direction is not None:
        raise ValueError("--over and --direction apply to --move only")
    legs = parse_symbols(args.pair)
    if len(legs) != 2:
        raise ValueError(f"--pair: expected two different symbols Y,X, got {args.pair!r}")
    pair: dict[str, Any] = {"y": legs[0], "x": legs[1], "window": args.window or 60,
                            "timeframe": args.timeframe or "1m", "method": args.method or "rolling_ols"}
    if cond == "zscore":
        return ZScoreRule(k=value, exit=args.exit, **pair, **common)
    if args.exit is not None:
        raise ValueError("--exit applies to --zscore only")
    return SpreadRule(op=cond.split("-")[1], level=value, **pair, **common)


def _store(args: argparse.Namespace) -> str:
    return args.store or settings().store


def run(args: argparse.Namespace) -> int:
    from quantlab.alerts import AlertHistory, add_rule, list_rules, remove_rule

    store = _store(args)
    out = sys.stdout
    if args.action == "add":
        rule = add_rule(store, build_rule(args))
        print(f"added {rule.id}: {rule.describe()}", file=out)
        return 0
    if args.action == "list":
        rules = list_rules(store)
        for r in rules:
            print(json.dumps(r.to_dict()) if args.json else f"{r.id:<8} {r.kind:<7} {r.describe()}",
                  file=out)
        if not rules and not args.json:
            print("no alert rules", file=out)
        return 0
    if args.action == "rm":
        for rid in args.ids:
            remove_rule(store, rid)
            print(f"removed {rid}", file=out)
        return 0
    if args.action == "history":
        last = None
        if args.last is not None:
            try:
                last = int(args.last)
            except ValueError:
                raise ValueError(f"--last: {args.last!r} is not a whole number") from None
            if last < 1:
                raise ValueError(f"--last: {args.last!r} must be >= 1")
        alerts = [a for a in AlertHistory(store).alerts() if args.rule is None or a.rule_id == args.rule]
        if last is not None:
            alerts = alerts[-last:]
        for a in alerts:
            if args.json:
                print(a.to_json(), file=out)
            else:
                lat = a.latency_s
                print(f"{a}" + ("" if lat is None else f"  [latency {lat * 1e3:.0f} ms]"), file=out)
        return 0
    raise ValueError(f"unknown action {args.action!r}")  # argparse prevents this
