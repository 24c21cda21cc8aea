export default function ({ data }) {
  // Start the in-browser decoder (runtime, binary, this run's decoder) while the server
  // still computes the page, so that the plane's first exact picture does not wait for it.
  if (data && data.runtime && data.model) loadSession(data).catch(() => {});
  // Every other page (data.warm): start the runtime alone once the tab has stayed on the
  // page for 3 s and the browser is idle, so that a later visit to the explorer in this
  // tab finds it compiled. Not in a hidden tab, and not for a page left or reloaded at
  // once: the compile costs the browser about half a second of CPU (BENCHMARKS.md).
  else if (data && data.runtime && data.warm && !ORT.warm && !ORT.warmTimer) {
    const go = () => {
      if (document.hidden) { ORT.warmTimer = null; return; }  // the next render tries again
      warmOrt(data.runtime).catch(() => {});
    };
    ORT.warmTimer = setTimeout(() => {
      if (window.requestIdleCallback) requestIdleCallback(go, { timeout: 2000 });
      else go();
    }, 3000);
  }
}
