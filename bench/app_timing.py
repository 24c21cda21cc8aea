"""How quick the app feels, measured with the real server and Debian's Chromium.

Prints:
1. cold start, ``--tries`` times, each on a fresh server (Chromium is up before the clock
   starts): from launching ``streamlit run app/main.py`` to the Home page's title drawn in
   the browser and to the page fully drawn (no script run in progress); then, after
   ``--think`` seconds of a visitor reading Home, the first open of the Latent explorer
   (a click on its sidebar link, until the plane of the pretrained 2-D VAE is drawn), with
   the background warm-up of the model pages' imports on (default) or off (``--no-warm``);
   the modules the server process had imported once Home was drawn are listed too;
2. a warm reload of Home and Train (new session);
3. the Train page: from clicking "Start training" (fcconv-vae on Fashion-MNIST, the form's
   defaults: L=10, batch 512, Adam 1e-3) to the first finished epoch shown (its
   reconstruction strip and loss curves drawn), split into process start, the epoch itself,
   validation/checkpoint/strip, and the page seeing it (fragment polling, then the browser
   drawing the message), from the run directory's timestamps and the websocket log;
4. rerun times while that run trains: the live fragment's automatic reruns (every 1 s) and
   full-page reruns (a widget change), each measured in the browser as the time from the
   rerun request the page sends on its websocket to the server's "script finished" message
   (JavaScript ``performance.now()`` in a WebSocket wrapper; messages decoded with
   Streamlit's protobufs);
5. cancel: from clicking Cancel to the page showing "Cancelled".

Usage: ``python -m bench.app_timing [--tries 3] [--think 3] [--no-warm] [--startup-only]
[--epochs 10] [--reruns 8]`` (uses temporary runs folders; needs /usr/bin/chromium, and
Fashion-MNIST for the training part).
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


# The pretrained run the cold start opens (?run=) and the explorer then shows; the plane's
# overlay (app/js/plane.js) is there once the plane is drawn.
EXPLORER_RUN = "fmnist-mlp-vae-2d"
PLANE = '[data-testid="ll-overlay"]'
# Shared libraries whose presence in the server process says a heavy import happened.
HEAVY_LIBS = {"torch": "libtorch_cpu", "torchvision": "torchvision/_C", "sklearn": "sklearn/"}


def server_loaded(url: str) -> list[str]:
    """Which of ``HEAVY_LIBS`` the server behind ``url`` has loaded (its /proc maps)."""
    import psutil

    port = url.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "streamlit" in " ".join(cmd) and port in cmd:
            maps = Path(f"/proc/{proc.pid}/maps").read_text()
            return [name for name, lib in HEAVY_LIBS.items() if lib in maps]
    return ["?"]


def cold_start(think: float, warm: bool) -> dict:
    """One cold start on a fresh server and an empty runs folder: seconds from
    ``streamlit run`` to health, Home's title drawn, Home fully drawn; what the server had
    loaded when the title was drawn; then, ``think`` seconds later, the seconds from a click
    on the sidebar's "Latent explorer" to its plane drawn."""
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-") as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        env = {} if warm else {"LATENTLAB_WARM": "0"}
        with chromium_page(height=1400) as page:  # the browser is up before the clock starts
            t0 = time.perf_counter()
            with streamlit_server(root, env) as url:
                r: dict = {"health_s": time.perf_counter() - t0}
                page.goto(f"{url}/?run={EXPLORER_RUN}")
                page.locator('h1:has-text("Latent lab")').wait_for(timeout=120_000)
                r["title_s"] = time.perf_counter() - t0
                r["loaded_at_title"] = server_loaded(url)
                wait_idle(page, 120_000)
                r["home_idle_s"] = time.perf_counter() - t0
                page.wait_for_timeout(think * 1000)  # a visitor reading Home
                t = time.perf_counter()
                nav = page.get_by_test_id("stSidebarNav")
                nav.get_by_role("link", name="Latent explorer").click()
                page.wait_for_selector(PLANE, timeout=240_000)
                wait_idle(page, 240_000)
                r["explorer_s"] = time.perf_counter() - t
                assert page_errors(page) == [], page_errors(page)
    return r


def startup(tries: int, think: float, warm: bool) -> None:
    """``tries`` cold starts, printed one per line, then their medians."""
    print(f"cold start, {tries} tries, warm-up {'on' if warm else 'off'}, think {think:g} s:")
    rows = []
    for i in range(tries):
        r = cold_start(think, warm)
        rows.append(r)
        print(
            f"  try {i + 1}: health {r['health_s']:.1f} s; Home title drawn "
            f"{r['title_s']:.1f} s (server had loaded: "
            f"{', '.join(r['loaded_at_title']) or 'none of torch, torchvision, sklearn'}); "
            f"Home fully drawn {r['home_idle_s']:.1f} s; Explorer after Home "
            f"{r['explorer_s']:.1f} s"
        )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k.endswith("_s")}
    print(
        f"  median: health {med['health_s']:.1f} s; Home title drawn {med['title_s']:.1f} s; "
        f"Home fully drawn {med['home_idle_s']:.1f} s; Explorer after Home "
        f"{med['explorer_s']:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tries", type=int, default=3, help="cold starts to time")
    p.add_argument("--think", type=float, default=3.0, help="seconds on Home before Explorer")
    p.add_argument("--no-warm", action="store_true", help="LATENTLAB_WARM=0 on the server")
    p.add_argument("--startup-only", action="store_true", help="skip the training part")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the measured run")
    p.add_argument("--reruns", type=int, default=8, help="full reruns to time")
    p.add_argument("--verbose", action="store_true", help="list the websocket events used")
    args = p.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    if args.tries > 0:
        startup(args.tries, args.think, not args.no_warm)
    if args.startup_only:
        return 0
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="latentlab-bench-") as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        with chromium_page(height=1400) as page:
            page.add_init_script(WS_HOOK)
            with streamlit_server(root) as url:
                page.goto(url)
                wait_idle(page, 120_000)
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
