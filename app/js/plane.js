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
  const exactBox = $(".ll-exact"), engine = $(".ll-engine");
  const labelSel = $(".ll-label"), labelRow = $(".ll-label-row"), othersBox = $(".ll-others");
  const alongIn = $(".ll-along"), alongRow = $(".ll-along-row");
  const W = window.__latentlab = window.__latentlab || {};
  const S = W.scrub = W.scrub || { moves: 0, paints: 0, latencies: [], pins: 0 };
  S.ready = false;

  // The plane's side follows the width the page gives the component: as large as
  // data.size, but small enough that "Decoded at the cursor" stays beside it (down to
  // MIN_SIDE; below that the panel wraps under the plane). Resizing redraws the canvases;
  // the mouse-move path (paint) does not depend on the size.
  const maxSize = data.size || 460, dpr = window.devicePixelRatio || 1;
  const MIN_SIDE = 280, GAP = 18;
  const explorer = $(".ll-explorer"), side = $(".ll-side");
  const M = { l: 46, r: 10, t: 10, b: 34 };
  let size = 0, pw = 0, ph = 0;
  function fitSize() {
    const avail = explorer.clientWidth;
    if (!avail) return size || maxSize;  // not laid out yet: the observer sizes it later
    const beside = avail - (side.offsetWidth || 210) - GAP;
    return Math.max(Math.floor(Math.min(maxSize, beside >= MIN_SIDE ? beside : avail)), 160);
  }
  function layout(s) {
    size = s; pw = size - M.l - M.r; ph = size - M.t - M.b;
    for (const c of [plane, overlay]) {
      c.width = size * dpr; c.height = size * dpr;
      c.style.width = size + "px"; c.style.height = size + "px";
    }
    wrap.style.width = size + "px"; wrap.style.height = size + "px";
    W.planeSize = size;
  }
  layout(fitSize());
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
  let cell = null, thumbs = null, alive = true, alongUV = null;

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
    if (alongUV && !mouse) {  // the slider's point on the path (its projection)
      g.fillStyle = "#222"; g.strokeStyle = "#fff"; g.lineWidth = 2;
      g.beginPath(); g.arc(X(alongUV[0]), Y(alongUV[1]), 5, 0, 2 * Math.PI); g.fill(); g.stroke();
    }
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

  // Exact decoding: z = origin + u du + v dv through the decoder itself (ONNX, in wasm).
  // Mouse moves that arrive while a decode runs are coalesced: the newest one is decoded
  // next, so the picture never lags behind a queue of stale points.
  const EX = data.exact || { error: "no decoder was sent" };
  let dec = null, want = null, busy = false, lastUV = null;
  exactBox.checked = !W.exactOff;
  exactBox.disabled = !!EX.error;
  function setEngine(note) {
    const grid = `the blended ${G}×${G} grid decoded on the server`;
    let text;
    if (EX.error) text = `Showing ${grid}: the in-browser decoder is unavailable (${EX.error}).`;
    else if (!exactBox.checked) text = `Showing ${grid} (exact decoding is off).`;
    else if (dec) text = `Exact: the decoder itself runs in this browser (onnxruntime-web ${EX.version}, WebAssembly).`;
    else text = note || `Starting the in-browser decoder… (meanwhile: ${grid})`;
    engine.textContent = text;
    S.engine = EX.error || !exactBox.checked || !dec ? "grid" : "exact";
    blendBox.disabled = S.engine === "exact";  // the blend is the grid's
    labelRow.style.display = EX.onehot && S.engine === "exact" ? "flex" : "none";
    othersBox.style.display = OTH.length && S.engine === "exact" ? "block" : "none";
    alongRow.style.display = EX.interp && S.engine === "exact" ? "flex" : "none";
  }
  // The other coordinates as sliders: each adds (value - page's value) * its direction to z,
  // in the browser. A pin sends them (and the label) so that the page decodes that point.
  const OTH = (EX.others || []).map((o) => ({ ...o, cur: o.value }));
  const pageLabel = EX.onehot ? EX.onehot.indexOf(1) : null;
  function buildOthers() {
    othersBox.innerHTML = "";
    if (!OTH.length) return;
    const sum = document.createElement("summary");
    sum.textContent = `Other coordinates at the cursor (${OTH.length})`;
    othersBox.appendChild(sum);
    for (const o of OTH) {
      const row = document.createElement("label");
      row.className = "ll-other";
      const name = document.createElement("span"), val = document.createElement("span");
      name.textContent = o.name; val.className = "ll-val"; val.textContent = fmt(o.cur);
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: o.lo, max: o.hi, step: (o.hi - o.lo) / 200 });
      input.value = o.cur;
      input.dataset.k = o.k;
      input.addEventListener("input", (ev) => {
        o.cur = Number(input.value); val.textContent = fmt(o.cur);
        S.sliderLatencies = S.sliderLatencies || [];
        reshow(ev.timeStamp, S.sliderLatencies);
      });
      row.append(name, val, input);
      othersBox.appendChild(row);
    }
    const reset = document.createElement("button");
    reset.type = "button"; reset.textContent = "back to the page's values";
    reset.addEventListener("click", () => {
      for (const o of OTH) o.cur = o.value;
      buildOthers();
      reshow(null);
    });
    othersBox.appendChild(reset);
    othersBox.open = !!W.othersOpen;  // closed at first; stays as the user left it
  }
  const onOthersToggle = () => { W.othersOpen = othersBox.open; };
  othersBox.addEventListener("toggle", onOthersToggle);
  function pinExtras() {  // what the browser decodes with, where it differs from the page
    if (S.engine !== "exact") return {};
    const out = {};
    if (EX.onehot && EX.onehot.indexOf(1) !== pageLabel) out.label = EX.onehot.indexOf(1);
    const moved = OTH.filter((o) => o.cur !== o.value);
    if (moved.length) out.others = Object.fromEntries(moved.map((o) => [String(o.k), o.cur]));
    return out;
  }

  // A conditional decoder's label, changed here, redraws the picture at the cursor in the
  // browser (no message to the server); the page's "Decoder label" sets the grid and pins.
  if (EX.onehot) {
    labelSel.innerHTML = "";
    EX.onehot.forEach((_, k) => {
      const o = document.createElement("option");
      o.value = String(k); o.textContent = names[k] ?? String(k);
      labelSel.appendChild(o);
    });
    labelSel.value = String(EX.onehot.indexOf(1));
  }
  function zAt(u, v) {
    const L = EX.origin.length, z = new Float64Array(L);
    for (let k = 0; k < L; k++) z[k] = EX.origin[k] + u * EX.du[k] + v * EX.dv[k];
    for (const o of OTH) {
      if (o.cur === o.value) continue;
      const d = o.cur - o.value;
      for (let k = 0; k < L; k++) z[k] += d * o.dir[k];
    }
    return z;
  }
  // The interpolation's point at t in [0, 1], as core.latent_geometry's lerp and slerp.
  function along(t) {
    const { z0, z1, method } = EX.interp, L = z0.length, z = new Float64Array(L);
    const lin = () => { for (let k = 0; k < L; k++) z[k] = (1 - t) * z0[k] + t * z1[k]; return z; };
    if (method !== "spherical" || t <= 0 || t >= 1) return t >= 1 ? Float64Array.from(z1) : lin();
    const n0 = Math.hypot(...z0), n1 = Math.hypot(...z1);
    if (n0 < 1e-8 || n1 < 1e-8) return lin();
    let dot = 0;
    for (let k = 0; k < L; k++) dot += (z0[k] / n0) * (z1[k] / n1);
    const omega = Math.acos(Math.min(Math.max(dot, -1), 1));
    if (omega < 1e-4 || Math.PI - omega < 1e-4) return lin();
    const a = Math.sin((1 - t) * omega) / Math.sin(omega), b = Math.sin(t * omega) / Math.sin(omega);
    for (let k = 0; k < L; k++) z[k] = a * (z0[k] / n0) + b * (z1[k] / n1);
    const dn = Math.hypot(...z), norm = (1 - t) * n0 + t * n1;
    for (let k = 0; k < L; k++) z[k] = (z[k] / dn) * norm;
    return z;
  }
  function toUV(z) {  // the projection of z on the plane's axes
    const P = EX.proj;
    let u = 0, v = 0;
    for (let k = 0; k < z.length; k++) { const d = z[k] - P.center[k]; u += d * P.ei[k]; v += d * P.ej[k]; }
    return [u, v];
  }
  async function decodeExact(u, v) { return decodeZ(zAt(u, v)); }
  async function decodeZ(z64) {
    const L = z64.length, z = Float32Array.from(z64);
    const feeds = { z: new dec.ort.Tensor("float32", z, [1, L]) };
    if (EX.onehot) {
      feeds.onehot = new dec.ort.Tensor("float32", Float32Array.from(EX.onehot), [1, EX.onehot.length]);
    }
    const res = await dec.sess.run(feeds);
    return res.image.data;  // (C, H, W) floats in [0, 1]
  }
  function paintFloat(px) {
    const o = out.data, n = H * Wd;
    const q = (x) => Math.round(Math.min(Math.max(x, 0), 1) * 255);
    for (let k = 0; k < n; k++) {
      const d = k * 4;
      if (C === 1) { o[d] = o[d + 1] = o[d + 2] = q(px[k]); }
      else { o[d] = q(px[k]); o[d + 1] = q(px[n + k]); o[d + 2] = q(px[2 * n + k]); }
      o[d + 3] = 255;
    }
    dg.putImageData(out, 0, 0);
    S.paints++;
  }
  // A picture's pixels were written at `done` for the event of time `t` (null: no event):
  // kept in `list` (default: the mouse's) for the tests and benches.
  function record(t, done, list, uv) {
    if (t == null) return;
    S.lastEvent = t; S.lastPaint = done;
    if (uv) S.lastUV = uv;
    const l = list || S.latencies;
    l.push(done - t);
    if (l.length > 500) l.shift();
  }
  async function pump() {
    busy = true;
    try {
      while (want && alive && dec && exactBox.checked) {
        const w = want; want = null;
        const px = await (w.z ? decodeZ(w.z) : decodeExact(w.u, w.v));
        if (!alive || !exactBox.checked) break;  // unmounted (a rerun), or switched off
        paintFloat(px);
        const done = performance.now();
        S.exactPaints = (S.exactPaints || 0) + 1;
        if (w.first) {
          S.firstExactMs = done - S.mountedAt;
          S.exactReady = true;
        }
        record(w.t, done, w.list, w.z ? null : [w.u, w.v]);
      }
    } catch (e) {
      if (!alive) return;
      EX.error = "it failed while decoding: " + e.message;
      exactBox.disabled = true; setEngine();
      if (lastUV) paint(lastUV[0], lastUV[1]);
    } finally { busy = false; }
  }
  // The picture at (u, v): exact when it can be, else the grid. t: the time of the event
  // that asked for it, recorded with the time its pixels were written in `list`.
  let lastT = null;  // the slider "along A -> B" chose the picture, until the mouse moves
  function showAlong(t, stamp, list) {
    lastT = t;
    const z = along(t);
    alongUV = toUV(z);
    drawOverlay(null);
    want = { z, t: stamp, list };
    if (!busy) pump();
  }
  function reshow(stamp, list) {  // the last picture asked for, after a label or slider change
    if (lastT !== null && dec && exactBox.checked && !EX.error) showAlong(lastT, stamp, list);
    else if (lastUV) show(lastUV[0], lastUV[1], stamp, list);
  }
  function show(u, v, t, list) {
    lastUV = [u, v]; lastT = null; alongUV = null;
    if (dec && exactBox.checked && !EX.error) {
      want = { u, v, t, list };
      if (!busy) pump();
      return true;
    }
    const ok = paint(u, v);
    if (ok) record(t, performance.now(), list, [u, v]);
    return ok;
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
    const painted = show(u, v, ev.timeStamp);
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
    setTriggerValue("pin", { u, v, ...pinExtras() });
  }
  function onToggle() { drawPlane(); }
  function onLabel(ev) {
    const k = Number(labelSel.value);
    EX.onehot = EX.onehot.map((_, j) => (j === k ? 1 : 0));
    if (W.exactPlane) W.exactPlane.onehot = EX.onehot;
    S.labelLatencies = S.labelLatencies || [];
    reshow(ev.timeStamp, S.labelLatencies);
  }
  function onAlong(ev) {
    S.alongLatencies = S.alongLatencies || [];
    const t = Number(alongIn.value);
    showAlong(t, ev.timeStamp, S.alongLatencies);  // sets alongUV, the point's projection
    showReadout(alongUV[0], alongUV[1], `t = ${t.toFixed(2)} along A → B`);
  }
  function onExact() {
    W.exactOff = !exactBox.checked;
    setEngine();
    reshow(null);
  }

  let pending = 0;
  const resized = new ResizeObserver(() => {
    cancelAnimationFrame(pending);  // once per frame, after layout (no observer loop)
    pending = requestAnimationFrame(() => {
      const s = fitSize();
      if (!alive || s === size) return;
      layout(s);
      tip.style.display = "none";
      drawPlane();
      drawOverlay(null);
    });
  });
  resized.observe(explorer);

  overlay.addEventListener("mousemove", onMove);
  overlay.addEventListener("mouseleave", onLeave);
  overlay.addEventListener("click", onClick);
  mapBox.addEventListener("change", onToggle);
  exactBox.addEventListener("change", onExact);
  labelSel.addEventListener("change", onLabel);
  alongIn.addEventListener("input", onAlong);
  drawPlane();
  S.mountedAt = performance.now(); S.firstExactMs = null; S.exactReady = false;
  buildOthers();
  alongIn.value = 0;  // the DOM outlives a rerun; the path may be a new one
  setEngine();
  drawOverlay(null);
  const start = data.start || [(u0 + u1) / 2, (v0 + v1) / 2];
  showReadout(start[0], start[1], "loading…");

  Promise.all([loadSprite(data.sprite), loadSprite(data.thumbs)]).then(([c, t]) => {
    if (!alive) return;
    cell = c; thumbs = t;
    if (!dec) paint(start[0], start[1]);
    showReadout(start[0], start[1], data.start_note || "");
    if (mapBox.checked) drawPlane();
    S.ready = true; S.spriteId = data.sprite.id;
  }).catch((e) => { readout.textContent = "could not load the decoded grid: " + e; });

  if (!EX.error) {
    loadSession(EX).then(async (d) => {
      if (!alive) return;
      dec = d;
      setEngine();
      // for the browser tests and the benchmark: decode any point of this plane
      W.exactDecode = async (u, v) => Array.from(await decodeExact(u, v));
      W.exactPlane = { origin: EX.origin, du: EX.du, dv: EX.dv, onehot: EX.onehot, others: OTH,
                       interp: EX.interp };
      W.exactAlong = async (t) => ({ z: Array.from(along(t)), image: Array.from(await decodeZ(along(t))) });
      if (exactBox.checked) {  // the first exact picture, through the queue like any other
        const [u, v] = lastUV || start;
        lastUV = [u, v];
        if (!want) want = { u, v, t: null };
        want.first = true;
        if (!busy) pump();
      } else S.exactReady = true;
    }).catch((e) => {
      if (!alive) return;
      EX.error = "it could not start: " + (e && e.message ? e.message : e);
      exactBox.disabled = true;
      setEngine();
    });
  }

  return () => {
    alive = false;
    resized.disconnect();
    cancelAnimationFrame(pending);
    overlay.removeEventListener("mousemove", onMove);
    overlay.removeEventListener("mouseleave", onLeave);
    overlay.removeEventListener("click", onClick);
    mapBox.removeEventListener("change", onToggle);
    exactBox.removeEventListener("change", onExact);
    labelSel.removeEventListener("change", onLabel);
    alongIn.removeEventListener("input", onAlong);
    othersBox.removeEventListener("toggle", onOthersToggle);
  };
}
