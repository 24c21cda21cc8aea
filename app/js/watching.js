// The Train page after Start (app/train_monitor.py: scroll_to_watching): bring the "Watching"
// heading to the top of the window. The page is still being replaced when this first runs
// (the old form's elements leave after it), so the heading is kept there until it has
// stayed put for half a second (at most 3 s), unless the user scrolls, types or clicks first.
(() => {
  let n = 0, still = 0, at = null, user = false;
  for (const e of ["wheel", "touchstart", "keydown", "mousedown"])
    window.addEventListener(e, () => { user = true; }, { once: true, capture: true });
  const go = () => {
    if (user || n++ > 180) return;
    const el = document.getElementById("watching");
    if (el) {
      const top = el.getBoundingClientRect().top;
      if (at === null || Math.abs(top - at) > 2) {
        el.scrollIntoView({ block: "start" });
        at = el.getBoundingClientRect().top;
        still = 0;
      } else if (++still > 30) return;
    }
    requestAnimationFrame(go);
  };
  go();
})();
