"""How quick the app feels, measured with the real server and Debian's Chromium.

Prints:
1. cold start: from launching ``streamlit run app/main.py`` to the Home page's title drawn
   in the browser (and to the page fully drawn), plus a warm reload of Home and Train;
2. the Train page: from clicking "Start training" (fcconv-vae on Fashion-MNIST, the form's
   defaults: L=10, batch 512, Adam 1e-3) to the first finished epoch shown (its
   reconstruction strip and loss curves drawn), split into process start, the epoch itself,
   validation/checkpoint/strip, and the page seeing it (fragment polling, then the browser
   drawing the message), from the run directory's timestamps and the websocket log;
3. rerun times while that run trains: the live fragment's automatic reruns (every 1 s) and
   full-page reruns (a widget change), each measured in the browser as the time from the
   rerun request the page sends on its websocket to the server's "script finished" message
   (JavaScript ``performance.now()`` in a WebSocket wrapper; messages decoded with
   Streamlit's protobufs);
4. cancel: from clicking Cancel to the page showing "Cancelled".

Usage: ``python -m bench.app_timing [--epochs 10] [--reruns 8]`` (uses a temporary runs
folder; needs /usr/bin/chromium and Fashion-MNIST).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from core.runs import list_runs
from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle

ROOT = Path(__file__).resolve().parent.parent

# Wraps the page's WebSocket: every message sent and every small message received is logged
# with performance.now() (received messages over 256 KB only by size).
WS_HOOK = """
(() => {
  const log = (window.__wslog = []);
  const b64 = (u8) => {
    let s = "";
    for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]);
    return btoa(s);
  };
  const bytes = (d) => d instanceof ArrayBuffer ? new Uint8Array(d)
      : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : null;
  const Native = window.WebSocket;
  class Logged extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (e) => {
        const t = performance.now(); const u8 = bytes(e.data);
        const data = u8 && u8.length < 262144 ? b64(u8) : null;
        if (u8) log.push({t, dir: "recv", size: u8.length, data});
      });
    }
    send(d) {
      const t = performance.now(); const u8 = bytes(d);
      if (u8) log.push({t, dir: "sent", size: u8.length, data: b64(u8)});
      return super.send(d);
    }
  }
  window.WebSocket = Logged;
})();
"""


def _element(msg: ForwardMsg) -> str | None:
    if msg.delta.WhichOneof("type") != "new_element":
        return None
    return msg.delta.new_element.WhichOneof("type")


def ws_events(page) -> list[tuple[float, str, str]]:
    """(ms, "rerun-full" | "rerun-fragment" | "finished", detail) since the last call."""
    out = []
    for e in page.evaluate("window.__wslog.splice(0)"):
        if not e.get("data"):
            continue
        raw = base64.b64decode(e["data"])
        try:
            if e["dir"] == "sent":
                msg = BackMsg.FromString(raw)
                if msg.WhichOneof("type") == "rerun_script":
                    cs = msg.rerun_script
                    kind = "rerun-fragment" if cs.fragment_id else "rerun-full"
                    out.append((e["t"], kind, "auto" if cs.is_auto_rerun else "user"))
            else:
                msg = ForwardMsg.FromString(raw)
                kind = msg.WhichOneof("type")
                if kind == "script_finished":
                    status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                    out.append((e["t"], "finished", status))
                elif kind == "delta" and _element(msg) in ("plotly_chart", "imgs"):
                    out.append((e["t"], _element(msg), ""))
        except Exception:  # a message of another kind
            continue
    return out


def rerun_durations(events) -> dict[str, list[float]]:
    """Pair each rerun request with its "script finished" message: durations in ms.

    A fragment run ends with FINISHED_FRAGMENT_RUN_SUCCESSFULLY, a full run with
    FINISHED_SUCCESSFULLY; runs cut short by another rerun are not counted.
    """
    res: dict[str, list[float]] = {"rerun-full": [], "rerun-fragment": []}
    pending: dict[str, float] = {}
    ends = {
        "FINISHED_FRAGMENT_RUN_SUCCESSFULLY": "rerun-fragment",
        "FINISHED_SUCCESSFULLY": "rerun-full",
    }
    for t, kind, detail in events:
        if kind.startswith("rerun"):
            pending[kind] = t
        elif kind == "finished":
            if detail in ends and ends[detail] in pending:
                res[ends[detail]].append(t - pending.pop(ends[detail]))
            else:  # finished early for another rerun
                pending.clear()
    return res


def summary(ms: list[float]) -> str:
    if not ms:
        return "n/a"
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, n={len(ms)}"


def type_in(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="epochs of the measured run")
    p.add_argument("--reruns", type=int, default=8, help="full reruns to time")
    p.add_argument("--verbose", action="store_true", help="list the websocket events used")
    args = p.parse_args(argv)
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    }
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-") as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        with chromium_page(height=1400) as page:  # the browser is up before the clock starts
            page.add_init_script(WS_HOOK)
            t0 = time.perf_counter()
            with streamlit_server(root) as url:
                results["health_s"] = time.perf_counter() - t0
                page.goto(url)
                page.locator('h1:has-text("Latent lab")').wait_for(timeout=120_000)
                results["first_render_s"] = time.perf_counter() - t0
                wait_idle(page)
                results["home_idle_s"] = time.perf_counter() - t0
                for name, path in (("home", ""), ("train", "train")):
                    t = time.perf_counter()
                    page.goto(f"{url}/{path}")
                    wait_idle(page)
                    results[f"reload_{name}_s"] = time.perf_counter() - t
                assert page_errors(page) == [], page_errors(page)

                # ---- a fcconv-vae run on Fashion-MNIST, started by clicking
                type_in(page, "Epochs", str(args.epochs))
                wait_idle(page)
                t_click_wall = time.time()
                t = time.perf_counter()
                ws_events(page)
                page.get_by_role("button", name="Start training").click()
                # the first epoch's reconstruction strip is drawn (with its loss curves)
                main = page.get_by_test_id("stMainBlockContainer")
                main.get_by_test_id("stImage").wait_for(timeout=600_000)
                results["click_to_first_epoch_s"] = time.perf_counter() - t
                t_shown_wall = time.time()
                t_shown_ms = page.evaluate("performance.now()")
                images = [t for t, kind, _ in ws_events(page) if kind == "imgs"]
                [run] = list_runs(root)
                cfg, status, m0 = run.config(), run.status(), run.metrics()[0]
                metrics_mtime = (run.path / "metrics.jsonl").stat().st_mtime
                strip_mtime = (run.path / "recon.png").stat().st_mtime
                results["run"] = {
                    "model": cfg["train"]["model"],
                    "dataset": cfg["train"]["dataset"],
                    "batch_size": cfg["train"]["batch_size"],
                    "latent": cfg["model"]["config"]["latent_dim"],
                    "device": status.get("device"),
                }
                results["split_s"] = {
                    "click_to_run_dir": cfg["created_at"] - t_click_wall,
                    "process_start_data_model": status["started_at"] - cfg["created_at"],
                    "epoch_1_training": m0["seconds"],
                    "validation": metrics_mtime - status["started_at"] - m0["seconds"],
                    "checkpoint_and_strip": strip_mtime - metrics_mtime,
                    "page_shows_it": t_shown_wall - strip_mtime,
                }
                if images:  # of which: the browser drawing it once the message arrived
                    results["message_to_drawn_s"] = (t_shown_ms - images[0]) / 1000

                # ---- rerun times while it trains
                ws_events(page)  # drop what came before
                page.wait_for_timeout(6000)
                events = ws_events(page)
                for i in range(args.reruns):
                    type_in(page, "Run name (optional)", f"bench-{i}")
                    page.wait_for_timeout(1500)
                events += ws_events(page)
                durations = rerun_durations(events)
                if args.verbose:
                    for t, kind, detail in events:
                        print(f"  ws {t:10.0f} ms  {kind:15} {detail}")
                results["fragment_rerun_ms"] = durations["rerun-fragment"]
                results["full_rerun_ms"] = durations["rerun-full"]
                results["state_during_reruns"] = run.status().get("state")
                results["epoch_after_reruns"] = run.status().get("epoch")

                # ---- cancel
                t = time.perf_counter()
                page.get_by_role("button", name="Cancel").click()
                page.get_by_text("Cancelled").first.wait_for(timeout=120_000)
                results["cancel_to_shown_s"] = time.perf_counter() - t
                results["final_state"] = run.status().get("state")
                assert page_errors(page) == [], page_errors(page)

    r = results
    print(f"machine: {r['machine']}")
    print(
        f"cold start: server health {r['health_s']:.1f} s; Home title drawn "
        f"{r['first_render_s']:.1f} s; Home fully drawn {r['home_idle_s']:.1f} s"
    )
    print(f"warm reload: Home {r['reload_home_s']:.1f} s, Train {r['reload_train_s']:.1f} s")
    print(f"run: {json.dumps(r['run'])}")
    print(f"click Start -> first finished epoch shown: {r['click_to_first_epoch_s']:.1f} s")
    for k, v in r["split_s"].items():
        print(f"    {k:>28}: {v:5.2f} s")
    if "message_to_drawn_s" in r:
        print(f"    {'(of which browser drawing)':>28}: {r['message_to_drawn_s']:5.2f} s")
    print(f"fragment rerun (auto, every 1 s): {summary(r['fragment_rerun_ms'])}")
    print(f"full rerun (widget change):       {summary(r['full_rerun_ms'])}")
    print(
        f"  (run state while measuring: {r['state_during_reruns']}, "
        f"epoch {r['epoch_after_reruns']})"
    )
    print(
        f"click Cancel -> 'Cancelled' shown: {r['cancel_to_shown_s']:.1f} s "
        f"(state {r['final_state']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
