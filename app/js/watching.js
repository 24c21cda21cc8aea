// The Train page after Start (app/train_monitor.py: scroll_to_watching): bring the "Watching"
// heading to the top of the window. The page is still being replaced when this first runs
// (the old form's elements leave after it, later on busy cores), so for 8 s the heading is
// put back whenever it moves, unless the user scrolls, types or clicks first.
(() => {
  const t0 = performance.now();
  let at = null, user = false;
  for (const e of ["wheel", "touchstart", "keydown", "mousedown"])
    window.addEventListener(e, () => { user = true; }, { once: true, capture: true });
  const go = () => {
    if (user || performance.now() - t0 > 8000) return;
    const el = document.getElementById("watching");
    if (el) {
      const top = el.getBoundingClientRect().top;
      if (at === null || Math.abs(top - at) > 2) {
        el.scrollIntoView({ block: "start" });
        at = el.getBoundingClientRect().top;
      }
    }
    requestAnimationFrame(go);
  };
  go();
})();
