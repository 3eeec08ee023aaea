"""The whole universe: 300 symbols on one recorder at ~3,000 trades/s in total, through drops
and cuts. The simulator and the recorder (``quantlab record``) run as separate processes, so
the recorder's CPU and RSS are its own. Reports the pace, recorder CPU and RSS, receipt-to-
durable p99 (goal < 1 s), that every id is stored exactly once, and ``Lab`` start time on
the store while it is being written.

    python benchmarks/bench_universe.py            # 60 s at 3,000 trades/s
    python benchmarks/bench_universe.py --quick    # 15 s at 1,000 trades/s (smoke)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from _sim import Sim
from _table import Row

from quantlab.status import read_status
from quantlab.store import TickStore

N_SYMBOLS = 300
FAULTS = "drop=0.001,cut_every=40000,seed=1"  # ~one cut per connection every ~25 s at 3,000/s


def log(msg: str) -> None:
    print(f"# universe: {msg}", file=sys.stderr, flush=True)


def universe(n: int = N_SYMBOLS) -> list[str]:
    return [f"U{i:03d}USDT" for i in range(n)]


def _check_exactly_once(store: Path, symbols: list[str]) -> tuple[int, int, int]:
    """(rows, symbols stored, symbols whose ids are not contiguous or that have recorded gaps)."""
    st = TickStore(store)
    rows = bad = 0
    stored = st.symbols("trades")
    for s in stored:
        ids = st.read(s)["trade_id"].to_numpy()
        rows += len(ids)
        bad += int(len(ids) > 1 and not np.all(np.diff(ids) == 1))
    bad += len(set(st.gaps()["symbol"])) if not st.gaps().empty else 0
    st.close()
    return rows, len(stored), bad


def _lab_start(store: Path, symbols: list[str]) -> float:
    """Seconds from ``Lab(...).start()`` until its history of every symbol is loaded (the
    recorder is alive, so the Lab follows it and starts none)."""
    from quantlab.live import Lab

    t0 = time.perf_counter()
    lab = Lab(symbols, store=store, source="binance", progress=False).start()
    try:
        lab.wait_ready(timeout=120, min_ticks=0)
        return time.perf_counter() - t0
    finally:
        lab.stop()


def measure(duration: float, rate: float, warmup: float = 10.0) -> dict:
    symbols = universe()
    tmp = Path(tempfile.mkdtemp(prefix="qluniverse-"))
    store = tmp / "store"
    sim = Sim("--source", "synthetic", "--symbols", ",".join(symbols), "--rate", str(rate),
              "--faults", FAULTS, "--start-now")
    try:
        rec = subprocess.Popen(
            [sys.executable, "-m", "quantlab", "record", "--store", str(store), "--symbols", ",".join(symbols),
             "--ws-url", sim.ws_url, "--rest-url", sim.rest_url, "--duration", str(duration), "--no-alerts"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "QUANTLAB_LOG_LEVEL": "ERROR"})
        p = psutil.Process(rec.pid)
        p_cpu0 = p.cpu_times()
        t0 = time.monotonic()
        rss_max, cpu0, ticks0, t_warm, t_first = 0, None, None, None, None
        p99s: list[float] = []
        vis99s: list[float] = []
        lab_s: list[float] = []
        lab_thread = None
        cpu = last = None
        while rec.poll() is None:
            time.sleep(1.0)
            try:
                cpu = p.cpu_times()
                rss_max = max(rss_max, p.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            st = read_status(store)
            elapsed = time.monotonic() - t0
            if t_first is None and st.get("ticks_durable", st.get("ticks_total")):
                t_first = elapsed  # the warm-up counts from the first durable trade
            if t_first is not None and elapsed >= t_first + warmup and cpu0 is None:
                cpu0, ticks0, t_warm = cpu, st["ticks_total"], time.monotonic()
            elif cpu0 is not None and elapsed < duration - 1:
                last = (cpu, st.get("ticks_total", 0), time.monotonic())
                p99 = (st.get("latency_ms") or {}).get("recv_to_durable", {}).get("p99")
                if p99 is not None:
                    p99s.append(p99)
                vis = (st.get("latency_ms") or {}).get("recv_to_visible", {}).get("p99")
                if vis is not None:
                    vis99s.append(vis)
            if lab_thread is None and cpu0 is not None:
                # on its own thread: sampling goes on while the Lab loads
                lab_thread = threading.Thread(target=lambda: lab_s.append(_lab_start(store, symbols)))
                lab_thread.start()
            if int(elapsed) % 5 == 0:
                log(f"{elapsed:5.1f}s ticks={st.get('ticks_total')} state={st.get('state')} "
                f"p99={(st.get('latency_ms') or {}).get('recv_to_durable', {}).get('p99')} "
                f"visible p99={(st.get('latency_ms') or {}).get('recv_to_visible', {}).get('p99')} "
                f"cpu={sum(cpu[:2]) if cpu else 0:.1f}s rss={rss_max / 2**20:.0f}MB")
        rec.wait(120)
        if lab_thread is not None:
            lab_thread.join(120)
        if cpu0 is None or last is None:  # a machine too loaded to get past the warm-up
            cpu0, ticks0, t_warm = p_cpu0, 0, t0
            last = (cpu, read_status(store).get("ticks_total", 0), time.monotonic())
        cpu1, ticks1, t1 = last
        busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        final = read_status(store)
        rows, n_stored, bad = _check_exactly_once(store, symbols)
        return {
            "pace": (ticks1 - ticks0) / (t1 - t_warm),
            "cpu": 100.0 * busy / (t1 - t_warm),
            "rss_mb": rss_max / 2**20,
            "p99_median": float(np.median(p99s)) if p99s else float("nan"),
            "p99_worst": max(p99s) if p99s else float("nan"),
            "visible_p99_median": float(np.median(vis99s)) if vis99s else float("nan"),
            "load": os.getloadavg()[0],
            "rows": rows, "stored": n_stored, "bad": bad, "lab_s": lab_s[0] if lab_s else None,
            "reconnects": final.get("reconnects"),
            "journal": final.get("journal") or {},
            "first_durable_s": t_first,
        }
    finally:
        sim.close()
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool = False) -> list[Row]:
    duration, rate = (25.0, 1_000.0) if quick else (60.0, 3_000.0)
    m = measure(duration, rate, warmup=3.0 if quick else 10.0)
    what = f"{N_SYMBOLS} symbols, {rate:,.0f} trades/s offered, drops and cuts"
    return [
        Row("universe", f"recorder pace ({what})", m["pace"], "trades/s", goal=f"~{rate:,.0f}"),
        Row("universe", "recorder CPU (one core = 100)", m["cpu"], "%"),
        Row("universe", "recorder RSS (max)", m["rss_mb"], "MB"),
        Row("universe", "receipt -> durable p99 (median of 1-s samples)", m["p99_median"], "ms", goal="< 1000 ms"),
        Row("universe", "receipt -> durable p99 (worst 1-s sample)", m["p99_worst"], "ms"),
        Row("universe", "receipt -> visible to readers p99 (median of 1-s samples)", m["visible_p99_median"], "ms"),
        Row("universe", f"symbols stored (of {N_SYMBOLS})", m["stored"], "symbols"),
        Row("universe", "symbols with a missing or doubled id", m["bad"], "symbols", goal="0"),
        Row("universe", "start -> first durable trade (300 tables created)", m["first_durable_s"], "s"),
        Row("universe", "Lab start on that store (history of all symbols loaded)",
            m["lab_s"] if m["lab_s"] is not None else float("nan"), "s"),
        Row("universe", "writer CPU of one journal write (all symbols, one flush)",
            m["journal"].get("journal_write_cpu_ms", float("nan")), "ms"),
        Row("universe", "writer CPU of one table write (one symbol, ~1 s of its trades)",
            m["journal"].get("table_write_cpu_ms", float("nan")), "ms"),
        Row("universe", "machine load average (1 min) at the end", m["load"], ""),
    ]


if __name__ == "__main__":
    os.environ.setdefault("QUANTLAB_LOG_LEVEL", "WARNING")
    for r in run(quick="--quick" in sys.argv):
        print(r)
