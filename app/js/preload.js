export default function ({ data }) {
  // Start the in-browser decoder (runtime, binary, this run's decoder) while the server
  // still computes the page, so that the plane's first exact picture does not wait for it.
  if (data && data.runtime && data.model) loadSession(data).catch(() => {});
}
