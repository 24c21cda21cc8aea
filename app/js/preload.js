export default function ({ data }) {
  // Start the in-browser decoder (runtime, binary, this run's decoder) while the server
  // still computes the page, so that the plane's first exact picture does not wait for it.
  if (data && data.runtime && data.model) loadSession(data).catch(() => {});
  // Every other page (data.warm): start the runtime alone once the browser is idle, so that
  // a later visit to the explorer in this tab finds it compiled.
  else if (data && data.runtime && data.warm && !ORT.warm) {
    const go = () => warmOrt(data.runtime).catch(() => {});
    if (window.requestIdleCallback) requestIdleCallback(go, { timeout: 4000 });
    else setTimeout(go, 1500);
  }
}
