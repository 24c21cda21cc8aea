// Shared by the latent plane and the decoder preloader (app/components.py prepends this file
// to both): onnxruntime-web, vendored in app/static/ort and served by the app, and one
// inference session per decoder, kept on window so that reruns, remounts and the two
// components share them. The runtime's module, its WebAssembly binary and the decoder are
// fetched in parallel; the binary is handed to the runtime (env.wasm.wasmBinary), which then
// fetches nothing itself.
const ORT = window.__latentlabOrt = window.__latentlabOrt || { mod: null, sessions: new Map() };
const abs = (path) => new URL(path, location.origin).href;
async function fetchOk(url, what) {  // the Response, or an error that says what failed
  const r = await fetch(abs(url));
  if (!r.ok) throw new Error(`the server answered ${r.status} for ${what}`);
  return r;
}
// The binary is stored gzipped (app/vendor_ort.py says why) and unpacked here.
async function unzipped(url, what) {
  const r = await fetchOk(url, what);
  return new Response(r.body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
}
function loadOrt(base) {
  if (!ORT.mod) {
    ORT.timing = { start: performance.now() };  // read by bench/exact_decoding.py
    ORT.mod = (async () => {
      const [ort, wasm] = await Promise.all([
        import(/* @vite-ignore */ abs(base + "ort.wasm.min.mjs")),
        unzipped(base + "ort-wasm-simd-threaded.wasm.gz", "the WebAssembly runtime"),
        import(/* @vite-ignore */ abs(base + "ort-wasm-simd-threaded.mjs")),  // its loader
      ]);
      ort.env.wasm.wasmPaths = abs(base);
      ort.env.wasm.wasmBinary = wasm;
      ort.env.wasm.numThreads = 1;  // no cross-origin isolation, so no wasm threads
      ort.env.wasm.proxy = false;
      ORT.timing.fetched = performance.now();
      return ort;
    })();
    ORT.mod.catch(() => { ORT.mod = null; });  // a later mount tries again
  }
  return ORT.mod;
}
// A one-node model (Identity on one float, opset 17, 79 bytes, made with onnx.helper;
// tests/test_onnx_decoder.py checks it is valid and computes y = x). Creating a session from it makes
// the runtime compile and start its WebAssembly (about 0.4 s on a cold browser), which is
// what the first decoder's session would otherwise wait for.
const WARM_ONNX = "CAgSCWxhdGVudGxhYjo6ChAKAXgSAXkiCElkZW50aXR5EgR3YXJtWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQEQ==";
function warmOrt(base) {  // the runtime fetched, compiled and started; no decoder yet
  if (!ORT.warm) {
    ORT.warm = loadOrt(base).then(async (ort) => {
      const bytes = Uint8Array.from(atob(WARM_ONNX), (c) => c.charCodeAt(0));
      const sess = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
      ORT.timing.warm = performance.now();
      await sess.release();
    });
    ORT.warm.catch(() => { ORT.warm = null; });
  }
  return ORT.warm;
}
function loadSession(ex) {  // ex: {runtime, model (URL), id}
  if (ORT.sessions.has(ex.id)) {  // most recently used last: eviction takes the oldest
    const p = ORT.sessions.get(ex.id);
    ORT.sessions.delete(ex.id);
    ORT.sessions.set(ex.id, p);
  } else {
    const p = (async () => {
      const [ort, bytes] = await Promise.all([
        loadOrt(ex.runtime), fetchOk(ex.model, "the decoder").then((r) => r.arrayBuffer())]);
      const sess = await ort.InferenceSession.create(new Uint8Array(bytes), {
        executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      ORT.timing.session = ORT.timing.session || performance.now();
      return { ort, sess };
    })();
    ORT.sessions.set(ex.id, p);
    p.catch(() => ORT.sessions.delete(ex.id));
    if (ORT.sessions.size > 4) {
      const [old, q] = ORT.sessions.entries().next().value;
      ORT.sessions.delete(old);
      q.then((o) => o.sess.release()).catch(() => {});
    }
  }
  return ORT.sessions.get(ex.id);
}
