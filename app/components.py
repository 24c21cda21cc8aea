"""The lab's custom browser components (``st.components.v2``: inline HTML, CSS and JS, no
build step, nothing downloaded).

- ``latent_plane``: the latent plane on a canvas: encoded points coloured by label with a
  thumbnail of the image under the mouse, and the decoded image at the cursor, updated on
  every mouse move *in the browser*. Python sends, once per plane, a sprite of an n x n grid
  of decodings (one PNG); the script blends the four cells around the cursor (bilinear), so
  a move costs a few thousand multiply-adds and no round trip. A click pins the point: the
  trigger ``pin`` = {"u", "v"} goes back to Python, which decodes it exactly.
- ``draw_pad``: a small drawing canvas; after every stroke its picture goes back to Python
  as a PNG data URL (state ``image``).
- ``category_grid``: N categorical variables x K categories; clicking a cell sends the
  trigger ``flip`` = {"v", "k"}.

Each JS module records what it did in ``window.__latentlab`` (counts, timestamps, the last
mouse-to-image latency), which the browser tests and the interaction benchmark read.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

# ----------------------------------------------------------------------------- latent plane
_PLANE_HTML = """
<div class="ll-explorer">
  <div class="ll-plane-wrap">
    <canvas class="ll-plane" data-testid="ll-plane"></canvas>
    <canvas class="ll-overlay" data-testid="ll-overlay"></canvas>
    <div class="ll-tip"><canvas class="ll-tip-img"></canvas><div class="ll-tip-text"></div></div>
  </div>
  <div class="ll-side">
    <div class="ll-title">Decoded at the cursor</div>
    <canvas class="ll-decoded" data-testid="ll-decoded"></canvas>
    <div class="ll-readout" data-testid="ll-readout">move the mouse over the plane</div>
    <label class="ll-check"><input type="checkbox" class="ll-blend" checked>
      blend the 4 nearest grid cells</label>
    <label class="ll-check"><input type="checkbox" class="ll-map">
      decoded map behind the points</label>
    <div class="ll-legend"></div>
    <div class="ll-hint">Click to pin a point: its exact decoding appears below the plane
      and its coordinates in the page's link.</div>
  </div>
</div>
"""

_PLANE_CSS = """
.ll-explorer { display: flex; gap: 18px; align-items: flex-start; flex-wrap: wrap;
  font-family: var(--st-font); color: var(--st-text-color); font-size: 13px; }
.ll-plane-wrap { position: relative; flex: none; }
.ll-plane-wrap canvas { position: absolute; left: 0; top: 0; }
.ll-overlay { cursor: crosshair; }
.ll-side { display: flex; flex-direction: column; gap: 6px; width: 210px; }
.ll-title { font-weight: 600; }
.ll-decoded { width: 200px; height: 200px; image-rendering: pixelated;
  border: 1px solid var(--st-border-color); border-radius: 4px; background: #888; }
.ll-readout { font-family: var(--st-code-font); font-size: 12px; min-height: 2.6em; }
.ll-check { display: flex; gap: 6px; align-items: center; font-size: 12px; cursor: pointer; }
.ll-legend { display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 4px; }
.ll-legend span { display: inline-flex; align-items: center; gap: 4px; font-size: 12px; }
.ll-legend i { width: 10px; height: 10px; border-radius: 50%; display: inline-block; }
.ll-hint { font-size: 12px; opacity: 0.7; }
.ll-tip { position: absolute; display: none; pointer-events: none; padding: 4px;
  background: var(--st-background-color); border: 1px solid var(--st-border-color);
  border-radius: 4px; box-shadow: 0 2px 6px rgba(0,0,0,.25); z-index: 5; }
.ll-tip-img { position: static !important; width: 84px; height: 84px;
  image-rendering: pixelated; display: block; }
.ll-tip-text { font-size: 11px; text-align: center; }
"""

_PLANE_JS = r"""
const sprites = new Map();  // id -> Promise<{w, h, px: Uint8ClampedArray, img}>
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
function color(k) {
  return k < PALETTE.length ? PALETTE[k] : `hsl(${(k * 137.5) % 360}, 65%, 45%)`;
}
function loadSprite(sp) {
  if (!sp || !sp.src) return Promise.resolve(null);
  if (!sprites.has(sp.id)) {
    sprites.set(sp.id, (async () => {
      const img = new Image();
      img.src = sp.src;
      await img.decode();
      const c = document.createElement("canvas");
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext("2d", { willReadFrequently: true });
      g.drawImage(img, 0, 0);
      return { w: c.width, h: c.height, px: g.getImageData(0, 0, c.width, c.height).data, img };
    })());
    if (sprites.size > 12) sprites.delete(sprites.keys().next().value);
  }
  return sprites.get(sp.id);
}
function niceTicks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const err = step0 / mag;
  const step = mag * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(+t.toFixed(10));
  return out;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const $ = (s) => parentElement.querySelector(s);
  const plane = $(".ll-plane"), overlay = $(".ll-overlay"), decoded = $(".ll-decoded");
  const readout = $(".ll-readout"), tip = $(".ll-tip"), tipImg = $(".ll-tip-img");
  const tipText = $(".ll-tip-text"), blendBox = $(".ll-blend"), mapBox = $(".ll-map");
  const wrap = $(".ll-plane-wrap"), legend = $(".ll-legend");
  const W = window.__latentlab = window.__latentlab || {};
  const S = W.scrub = W.scrub || { moves: 0, paints: 0, latencies: [], pins: 0 };
  S.ready = false;

  const size = data.size || 460, dpr = window.devicePixelRatio || 1;
  const M = { l: 46, r: 10, t: 10, b: 34 };
  const pw = size - M.l - M.r, ph = size - M.t - M.b;
  for (const c of [plane, overlay]) {
    c.width = size * dpr; c.height = size * dpr;
    c.style.width = size + "px"; c.style.height = size + "px";
  }
  wrap.style.width = size + "px"; wrap.style.height = size + "px";
  const [u0, u1] = data.extent.u, [v0, v1] = data.extent.v;
  const X = (u) => M.l + (u - u0) / (u1 - u0) * pw;
  const Y = (v) => M.t + (v1 - v) / (v1 - v0) * ph;
  const U = (x) => u0 + (x - M.l) / pw * (u1 - u0);
  const V = (y) => v1 - (y - M.t) / ph * (v1 - v0);
  const [C, H, Wd] = data.cell;  // channels, height, width of one decoded image
  decoded.width = Wd; decoded.height = H;
  const dg = decoded.getContext("2d");
  const out = dg.createImageData(Wd, H);
  const G = data.sprite.grid;
  const pts = data.points || { u: [], v: [], label: [], index: [] };
  const names = data.class_names || [];
  let cell = null, thumbs = null, alive = true;

  legend.innerHTML = "";
  const seen = [...new Set(pts.label)].sort((a, b) => a - b);
  for (const k of seen) {
    const s = document.createElement("span");
    s.innerHTML = `<i style="background:${color(k)}"></i>${names[k] ?? k}`;
    legend.appendChild(s);
  }

  function drawPlane() {
    const g = plane.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, size, size);
    g.fillStyle = data.background || "#ffffff";
    g.fillRect(M.l, M.t, pw, ph);
    if (mapBox.checked && cell) {
      const du = pw / Math.max(G - 1, 1), dv = ph / Math.max(G - 1, 1);
      g.save();
      g.beginPath(); g.rect(M.l, M.t, pw, ph); g.clip();
      g.globalAlpha = 0.55; g.imageSmoothingEnabled = false;
      g.drawImage(cell.img, M.l - du / 2, M.t - dv / 2, pw + du, ph + dv);
      g.restore();
    }
    g.strokeStyle = "rgba(128,128,128,0.25)"; g.lineWidth = 1;
    g.fillStyle = "rgba(90,90,90,1)"; g.font = "11px sans-serif";
    g.textAlign = "center"; g.textBaseline = "top";
    for (const t of niceTicks(u0, u1, 6)) {
      const x = X(t);
      g.beginPath(); g.moveTo(x, M.t); g.lineTo(x, M.t + ph); g.stroke();
      g.fillText(String(+t.toPrecision(3)), x, M.t + ph + 4);
    }
    g.textAlign = "right"; g.textBaseline = "middle";
    for (const t of niceTicks(v0, v1, 6)) {
      const y = Y(t);
      g.beginPath(); g.moveTo(M.l, y); g.lineTo(M.l + pw, y); g.stroke();
      g.fillText(String(+t.toPrecision(3)), M.l - 5, y);
    }
    g.strokeStyle = "rgba(90,90,90,0.8)"; g.strokeRect(M.l, M.t, pw, ph);
    g.textAlign = "center"; g.textBaseline = "bottom"; g.font = "12px sans-serif";
    g.fillText(data.axes[0], M.l + pw / 2, size - 1);
    g.save(); g.translate(11, M.t + ph / 2); g.rotate(-Math.PI / 2);
    g.textBaseline = "middle"; g.fillText(data.axes[1], 0, 0); g.restore();
    g.save(); g.beginPath(); g.rect(M.l, M.t, pw, ph); g.clip();
    g.globalAlpha = 0.75;
    for (let n = 0; n < pts.u.length; n++) {
      g.fillStyle = color(pts.label[n]);
      g.beginPath(); g.arc(X(pts.u[n]), Y(pts.v[n]), 2.6, 0, 2 * Math.PI); g.fill();
    }
    g.restore();
  }

  function drawOverlay(mouse) {
    const g = overlay.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, size, size);
    g.save(); g.beginPath(); g.rect(M.l, M.t, pw, ph); g.clip();
    if (data.path && data.path.length > 1) {
      g.strokeStyle = "#333"; g.lineWidth = 2; g.setLineDash([5, 4]);
      g.beginPath();
      data.path.forEach(([u, v], n) => n ? g.lineTo(X(u), Y(v)) : g.moveTo(X(u), Y(v)));
      g.stroke(); g.setLineDash([]);
    }
    g.restore();
    for (const m of data.markers || []) {
      // A marker off the plane sits on its border, hollow, with an arrow in its label.
      const rx = X(m.u), ry = Y(m.v);
      const x = Math.min(Math.max(rx, M.l), M.l + pw), y = Math.min(Math.max(ry, M.t), M.t + ph);
      const off = x !== rx || y !== ry;
      const arrow = off ? (ry < M.t ? "↑" : ry > M.t + ph ? "↓" : "")
        + (rx < M.l ? "←" : rx > M.l + pw ? "→" : "") : "";
      g.lineWidth = 2.5; g.strokeStyle = m.color || "#d00"; g.fillStyle = m.color || "#d00";
      if (off) g.fillStyle = "rgba(255,255,255,0.9)";
      if (m.kind === "pin") {
        g.beginPath(); g.arc(x, y, 7, 0, 2 * Math.PI); g.stroke();
        g.beginPath(); g.moveTo(x - 11, y); g.lineTo(x + 11, y);
        g.moveTo(x, y - 11); g.lineTo(x, y + 11); g.stroke();
      } else {
        g.beginPath(); g.moveTo(x, y - 8); g.lineTo(x + 8, y); g.lineTo(x, y + 8);
        g.lineTo(x - 8, y); g.closePath(); g.fill();
        g.strokeStyle = "#fff"; g.lineWidth = 1.5; g.stroke();
      }
      if (off && m.kind !== "pin") {
        g.strokeStyle = m.color || "#d00"; g.lineWidth = 2; g.stroke();
      }
      const text = (m.text || "") + (off ? ` ${arrow} off the plane` : "");
      if (text) {
        g.font = "bold 12px sans-serif"; g.textBaseline = y < M.t + 20 ? "top" : "bottom";
        const tx = x > M.l + pw - 120 ? x - 9 : x + 9;
        g.textAlign = x > M.l + pw - 120 ? "right" : "left";
        const ty = y < M.t + 20 ? y + 6 : y - 6;
        g.lineWidth = 3; g.strokeStyle = "#fff"; g.strokeText(text, tx, ty);
        g.fillStyle = "#111"; g.fillText(text, tx, ty);
      }
    }
    g.save(); g.beginPath(); g.rect(M.l, M.t, pw, ph); g.clip();
    if (mouse) {
      g.strokeStyle = "rgba(0,0,0,0.55)"; g.lineWidth = 1;
      g.beginPath(); g.moveTo(mouse.x, M.t); g.lineTo(mouse.x, M.t + ph);
      g.moveTo(M.l, mouse.y); g.lineTo(M.l + pw, mouse.y); g.stroke();
    }
    g.restore();
  }

  // Bilinear blend of the four grid cells around (u, v), straight from the sprite's pixels.
  function paint(u, v) {
    if (!cell) return false;
    const fx = Math.min(Math.max((u - u0) / (u1 - u0), 0), 1) * (G - 1);
    const fy = Math.min(Math.max((v1 - v) / (v1 - v0), 0), 1) * (G - 1);
    let c0 = Math.floor(fx), r0 = Math.floor(fy);
    let c1 = Math.min(c0 + 1, G - 1), r1 = Math.min(r0 + 1, G - 1);
    let ax = fx - c0, ay = fy - r0;
    if (!blendBox.checked) { c0 = c1 = Math.round(fx); r0 = r1 = Math.round(fy); ax = ay = 0; }
    const w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
    const px = cell.px, sw = cell.w, o = out.data;
    const b00 = (r0 * H * sw + c0 * Wd) * 4, b01 = (r0 * H * sw + c1 * Wd) * 4;
    const b10 = (r1 * H * sw + c0 * Wd) * 4, b11 = (r1 * H * sw + c1 * Wd) * 4;
    for (let y = 0; y < H; y++) {
      const row = y * sw * 4;
      for (let x = 0; x < Wd; x++) {
        const s = row + x * 4, d = (y * Wd + x) * 4;
        for (let ch = 0; ch < 3; ch++) {
          o[d + ch] = w00 * px[b00 + s + ch] + w01 * px[b01 + s + ch]
                    + w10 * px[b10 + s + ch] + w11 * px[b11 + s + ch];
        }
        o[d + 3] = 255;
      }
    }
    dg.putImageData(out, 0, 0);
    S.paints++;
    return true;
  }

  const fmt = (x) => { const t = x.toFixed(3); return /^-0\.0+$/.test(t) ? t.slice(1) : t; };
  function showReadout(u, v, extra) {
    readout.textContent = `${data.axes[0]} = ${fmt(u)}\n${data.axes[1]} = ${fmt(v)}`
      + (extra ? `\n${extra}` : "");
    readout.style.whiteSpace = "pre";
  }

  function nearest(x, y) {
    let best = -1, bd = 36;  // within 6 px
    for (let n = 0; n < pts.u.length; n++) {
      const dx = X(pts.u[n]) - x, dy = Y(pts.v[n]) - y, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = n; }
    }
    return best;
  }

  function showTip(n, x, y) {
    if (n < 0 || !thumbs) { tip.style.display = "none"; return; }
    const th = data.thumbs, k = n, cols = th.cols;
    tipImg.width = Wd; tipImg.height = H;
    const g = tipImg.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.clearRect(0, 0, Wd, H);
    g.drawImage(thumbs.img, (k % cols) * Wd, Math.floor(k / cols) * H, Wd, H, 0, 0, Wd, H);
    const lab = names[pts.label[n]] ?? pts.label[n];
    tipText.textContent = `${lab} · #${pts.index[n]}`;
    tip.style.display = "block";
    tip.style.left = Math.min(x + 14, size - 96) + "px";
    tip.style.top = Math.max(y - 110, 0) + "px";
  }

  function local(ev) {
    const r = overlay.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * size / r.width, y: (ev.clientY - r.top) * size / r.height };
  }
  function inside(p) {
    return p.x >= M.l && p.x <= M.l + pw && p.y >= M.t && p.y <= M.t + ph;
  }

  function onMove(ev) {
    const p = local(ev);
    if (!inside(p)) { tip.style.display = "none"; drawOverlay(null); return; }
    const u = U(p.x), v = V(p.y);
    S.moves++;
    const painted = paint(u, v);
    if (painted) {
      const done = performance.now();
      S.lastEvent = ev.timeStamp; S.lastPaint = done; S.lastUV = [u, v];
      S.latencies.push(done - ev.timeStamp);
      if (S.latencies.length > 500) S.latencies.shift();
    }
    showReadout(u, v, painted ? "" : "decoding the plane…");
    drawOverlay(p);
    showTip(nearest(p.x, p.y), p.x, p.y);
  }
  function onLeave() { tip.style.display = "none"; drawOverlay(null); }
  function onClick(ev) {
    const p = local(ev);
    if (!inside(p)) return;
    const u = U(p.x), v = V(p.y);
    S.pins++;
    data.markers = (data.markers || []).filter((m) => m.kind !== "pin");
    data.markers.push({ u, v, kind: "pin", color: "#d00", text: "pin" });
    drawOverlay(p);
    setTriggerValue("pin", { u, v });
  }
  function onToggle() { drawPlane(); }

  overlay.addEventListener("mousemove", onMove);
  overlay.addEventListener("mouseleave", onLeave);
  overlay.addEventListener("click", onClick);
  mapBox.addEventListener("change", onToggle);
  drawPlane();
  drawOverlay(null);
  const start = data.start || [(u0 + u1) / 2, (v0 + v1) / 2];
  showReadout(start[0], start[1], "loading…");

  Promise.all([loadSprite(data.sprite), loadSprite(data.thumbs)]).then(([c, t]) => {
    if (!alive) return;
    cell = c; thumbs = t;
    paint(start[0], start[1]);
    showReadout(start[0], start[1], data.start_note || "");
    if (mapBox.checked) drawPlane();
    S.ready = true; S.spriteId = data.sprite.id;
  }).catch((e) => { readout.textContent = "could not load the decoded grid: " + e; });

  return () => {
    alive = false;
    overlay.removeEventListener("mousemove", onMove);
    overlay.removeEventListener("mouseleave", onLeave);
    overlay.removeEventListener("click", onClick);
    mapBox.removeEventListener("change", onToggle);
  };
}
"""

# ----------------------------------------------------------------------------- draw pad
_PAD_HTML = """
<div class="ll-pad">
  <canvas class="ll-pad-canvas" data-testid="ll-pad"></canvas>
  <div class="ll-pad-tools">
    <button class="ll-pad-clear" type="button">Clear</button>
    <label>brush <input class="ll-pad-brush" type="range" min="3" max="40"></label>
    <input class="ll-pad-color" type="color" value="#ffffff" title="ink colour">
  </div>
</div>
"""

_PAD_CSS = """
.ll-pad { display: flex; flex-direction: column; gap: 6px; font-family: var(--st-font);
  color: var(--st-text-color); font-size: 12px; }
.ll-pad-canvas { border: 1px solid var(--st-border-color); border-radius: 4px;
  cursor: crosshair; touch-action: none; }
.ll-pad-tools { display: flex; gap: 10px; align-items: center; }
.ll-pad-tools button { font: inherit; padding: 2px 10px; border-radius: 4px; cursor: pointer;
  border: 1px solid var(--st-border-color); background: var(--st-secondary-background-color);
  color: var(--st-text-color); }
.ll-pad-tools label { display: flex; gap: 4px; align-items: center; }
.ll-pad-brush { width: 80px; }
.ll-pad-color { width: 28px; height: 22px; padding: 0; border: none; background: none; }
"""

_PAD_JS = r"""
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const canvas = parentElement.querySelector(".ll-pad-canvas");
  const clear = parentElement.querySelector(".ll-pad-clear");
  const brush = parentElement.querySelector(".ll-pad-brush");
  const colorIn = parentElement.querySelector(".ll-pad-color");
  const W = window.__latentlab = window.__latentlab || {};
  const P = W.pad = W.pad || { strokes: 0, sent: 0 };
  const size = data.size || 224;
  const bg = data.dark ? "#000000" : "#ffffff";
  colorIn.style.display = data.rgb ? "" : "none";
  if (!data.rgb) colorIn.value = data.dark ? "#ffffff" : "#000000";
  if (!brush.dataset.init) { brush.value = data.brush || 18; brush.dataset.init = "1"; }
  const g = canvas.getContext("2d");
  const sig = `${size}|${bg}|${data.rgb}`;
  if (canvas.dataset.sig !== sig) {  // a new model: a blank pad in its colours
    canvas.width = size; canvas.height = size;
    canvas.style.width = size + "px"; canvas.style.height = size + "px";
    g.fillStyle = bg; g.fillRect(0, 0, size, size);
    canvas.dataset.sig = sig;
  }
  let drawing = false, last = null;
  const pos = (ev) => {
    const r = canvas.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * size / r.width, y: (ev.clientY - r.top) * size / r.height };
  };
  function dot(p) {
    g.fillStyle = colorIn.value;
    g.beginPath(); g.arc(p.x, p.y, brush.value / 2, 0, 2 * Math.PI); g.fill();
  }
  function down(ev) {
    drawing = true; last = pos(ev); dot(last);
    canvas.setPointerCapture?.(ev.pointerId);
  }
  function move(ev) {
    if (!drawing) return;
    const p = pos(ev);
    g.strokeStyle = colorIn.value; g.lineWidth = +brush.value; g.lineCap = "round";
    g.lineJoin = "round";
    g.beginPath(); g.moveTo(last.x, last.y); g.lineTo(p.x, p.y); g.stroke();
    last = p;
  }
  function up() {
    if (!drawing) return;
    drawing = false; P.strokes++; P.sent++;
    setStateValue("image", canvas.toDataURL("image/png"));
  }
  function wipe() {
    g.fillStyle = bg; g.fillRect(0, 0, size, size);
    P.sent++;
    setStateValue("image", null);
  }
  canvas.addEventListener("pointerdown", down);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", up);
  canvas.addEventListener("pointerleave", up);
  clear.addEventListener("click", wipe);
  return () => {
    canvas.removeEventListener("pointerdown", down);
    canvas.removeEventListener("pointermove", move);
    canvas.removeEventListener("pointerup", up);
    canvas.removeEventListener("pointerleave", up);
    clear.removeEventListener("click", wipe);
  };
}
"""

# ----------------------------------------------------------------------------- category grid
_CATS_HTML = '<div class="ll-cats" data-testid="ll-cats"></div>'

_CATS_CSS = """
.ll-cats { font-family: var(--st-font); color: var(--st-text-color); font-size: 12px; }
.ll-cats table { border-collapse: separate; border-spacing: 3px; }
.ll-cats th { font-weight: 500; opacity: 0.75; padding: 0 4px; }
.ll-cats td.cell { width: 26px; height: 24px; border-radius: 4px; cursor: pointer;
  text-align: center; border: 1px solid var(--st-border-color); }
.ll-cats td.cell.on { outline: 2.5px solid var(--st-primary-color); outline-offset: -1px;
  font-weight: 700; }
.ll-cats td.cell:hover { outline: 2px dashed var(--st-primary-color); }
"""

_CATS_JS = r"""
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".ll-cats");
  const V = data.vars, K = data.cats, probs = data.probs, choice = data.choice;
  let html = "<table><tr><th></th>";
  for (let k = 0; k < K; k++) html += `<th>${k}</th>`;
  html += "</tr>";
  for (let v = 0; v < V; v++) {
    html += `<tr><th>var ${v}</th>`;
    for (let k = 0; k < K; k++) {
      const p = probs ? probs[v][k] : 0;
      const on = choice[v] === k ? " on" : "";
      const bg = `rgba(31,119,180,${(0.08 + 0.85 * p).toFixed(3)})`;
      html += `<td class="cell${on}" data-v="${v}" data-k="${k}" style="background:${bg}"`
        + ` title="variable ${v}, category ${k}: q = ${p.toFixed(3)}">${on ? "●" : ""}</td>`;
    }
    html += "</tr>";
  }
  root.innerHTML = html + "</table>";
  function click(ev) {
    const td = ev.target.closest("td.cell");
    if (!td) return;
    const v = +td.dataset.v, k = +td.dataset.k;
    root.querySelectorAll(`td.cell[data-v="${v}"]`).forEach((c) => {
      c.classList.remove("on"); c.textContent = "";
    });
    td.classList.add("on"); td.textContent = "●";
    setTriggerValue("flip", { v, k });
  }
  root.addEventListener("click", click);
  return () => root.removeEventListener("click", click);
}
"""

_plane = st.components.v2.component(
    "latentlab.latent_plane", html=_PLANE_HTML, css=_PLANE_CSS, js=_PLANE_JS
)
_pad = st.components.v2.component("latentlab.draw_pad", html=_PAD_HTML, css=_PAD_CSS, js=_PAD_JS)
_cats = st.components.v2.component(
    "latentlab.category_grid", html=_CATS_HTML, css=_CATS_CSS, js=_CATS_JS
)


def _noop() -> None:
    pass


def latent_plane(data: dict, key: str, on_pin: Callable[[], None] | None = None):
    """Mount the latent plane.

    Args:
        data: {"sprite": {"src": PNG data URL, "id", "grid": n}, "cell": [C, H, W],
            "extent": {"u": [lo, hi], "v": [lo, hi]}, "axes": [x name, y name],
            "points": {"u", "v", "label", "index"}, "thumbs": {"src", "id", "cols"},
            "class_names", "markers": [{"u", "v", "kind": "pin"|"point", "color", "text"}],
            "path": [[u, v], ...], "start": [u, v], "size": pixels}.
        on_pin: called (before the script reruns) when the user clicks the plane; the click
            is in ``st.session_state[key]["pin"]`` as {"u", "v"}.

    Returns:
        The component result; ``.pin`` holds the click of this run, else None.
    """
    return _plane(key=key, data=data, on_pin_change=on_pin or _noop, width="stretch")


def draw_pad(key: str, dark: bool, rgb: bool = False, size: int = 224, brush: int = 18):
    """Mount the drawing pad; ``.image`` is the last stroke's PNG data URL (None if empty)."""
    return _pad(
        key=key,
        data={"dark": dark, "rgb": rgb, "size": size, "brush": brush},
        on_image_change=_noop,
        width="content",
    )


def category_grid(key: str, choice: list[int], categories: int, probs=None, on_flip=None):
    """Mount the N x K category picker (shade = ``probs`` (N, K), marked = ``choice``);
    ``.flip`` is {"v", "k"} in the run after a click."""
    data = {
        "vars": len(choice),
        "cats": int(categories),
        "choice": [int(c) for c in choice],
        "probs": None if probs is None else [[round(float(p), 4) for p in row] for row in probs],
    }
    return _cats(key=key, data=data, on_flip_change=on_flip or _noop, width="content")
