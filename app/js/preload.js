export default function ({ data }) {
  // Start the in-browser decoder (runtime, binary, this run's decoder) while the server
  // still computes the page, so that the plane's first exact picture does not wait for it.
  if (data && data.runtime && data.model) loadSession(data).catch(() => {});
  // Every other page (data.warm): start the runtime alone once the tab has been left alone
  // for 3 s (no key, click or wheel) and the browser is idle, so that a later visit to the
  // explorer in this tab finds it compiled. Not in a hidden tab, not for a page left or
  // reloaded at once, and not while the user acts: the compile costs the browser about
  // half a second of CPU (BENCHMARKS.md).
  else if (data && data.runtime && data.warm && !ORT.warm && !ORT.warmTimer) {
    if (ORT.lastInput === undefined) {
      ORT.lastInput = performance.now();
      for (const e of ["keydown", "mousedown", "wheel", "touchstart"])
        window.addEventListener(e, () => { ORT.lastInput = performance.now(); },
          { capture: true, passive: true });
    }
    const go = () => {
      ORT.warmTimer = null;
      if (document.hidden || ORT.warm) return;  // the next render tries again
      warmOrt(data.runtime).catch(() => {});
    };
    const wait = () => {
      const quiet = performance.now() - ORT.lastInput;
      if (quiet < 3000) { ORT.warmTimer = setTimeout(wait, 3000 - quiet + 50); return; }
      if (window.requestIdleCallback) requestIdleCallback(go, { timeout: 2000 });
      else go();
    };
    ORT.warmTimer = setTimeout(wait, 3000);
  }
}
