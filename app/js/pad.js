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
    canvas.style.width = size + "px";  // at most: a narrow column shrinks it (pad.css)
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
