"""First start offline: `streamlit run` with no runs folder, no Fashion-MNIST and a dead
mirror, until the explorer has drawn the pretrained 2-D model: python -m bench.first_start"""

import tempfile
import time
from pathlib import Path

from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle

PLANE = "iframe, canvas, [data-testid='stCustomComponentV1']"


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    env = {
        "LATENTLAB_DATA_DIR": str(tmp / "data"),
        "LATENTLAB_FMNIST_SYSTEM_DIR": str(tmp / "none"),
        "LATENTLAB_MIRROR": "http://127.0.0.1:9/{name}/",
    }
    t0 = time.time()
    with streamlit_server(tmp / "runs", env) as url:
        t_srv = time.time() - t0
        with chromium_page() as page:
            page.goto(url + "/explore?run=fmnist-mlp-vae-2d")
            wait_idle(page, timeout=240_000)
            page.wait_for_selector(PLANE, timeout=240_000)
            t_page = time.time() - t0
            print("page errors:", page_errors(page))
    print(f"server healthy {t_srv:.1f} s; explorer drawn on the pretrained 2-D VAE "
          f"{t_page:.1f} s after `streamlit run`")  # fmt: skip


if __name__ == "__main__":
    main()
