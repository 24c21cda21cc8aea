"""Home: what the lab does, where each page is, a one-minute quick start and the current
run's card. The first page a visitor sees, so it imports no torch: the quick start imports
the trainer's side when it is clicked."""

import streamlit as st

from app.common import current_run, explain, page_path, runs_root
from app.runs_table import run_card
from app.text import md_escape, os_error_sentence

st.title("Latent lab")
st.markdown(
    "Train small autoencoders on images, then look inside them: walk the latent space and "
    "watch the decoded image change, ask a conditional model for a chosen class, see how "
    "the codes of a whole dataset arrange themselves, and compare runs side by side."
)
explain(
    """
**Autoencoder.** An *encoder* squeezes an image (784 pixels for a 28×28 picture) into a
short code *z*, the *latent* vector (say 2 or 10 numbers); a *decoder* turns *z* back into
an image. Training makes the output match the input, so *z* must keep what matters.

**Variational autoencoder (VAE).** The encoder outputs a small Gaussian cloud for each
image, a mean μ and a spread σ, instead of one point. The decoder is trained on random
points from that cloud, so nearby codes decode to similar images and the whole space
becomes usable: pick any *z* near the origin and you get a plausible image.

**The reparameterisation trick.** Sampling is not differentiable, so the VAE writes the
sample as *z = μ + σ · ε* with ε drawn from N(0, 1). The randomness sits in ε, and the
gradient flows through μ and σ to the encoder.

**The KL term.** The loss adds the Kullback–Leibler divergence between each image's cloud
N(μ, σ²) and the prior N(0, I). It pulls the clouds towards the origin and keeps them from
shrinking to points; its weight β trades sharp reconstructions against a smooth, well
packed latent space.

**A latent plane.** With a 2-D code every image is a point in a plane, and every point of
the plane decodes to an image: the *Latent explorer* lets you scrub across it. With more
dimensions you pick two and hold the others fixed.

**A UMAP projection.** To see codes with more than two dimensions, UMAP draws each one as a
point in 2-D so that points that were near each other stay near. Clusters of one colour
mean the model separates the classes without ever having seen a label.
"""
)

st.subheader("Pages")
PAGES = [
    (
        "train.py",
        "Train",
        ":material/model_training:",
        "pick a dataset and a model family, start a run, watch its loss curves live.",
    ),
    (
        "runs.py",
        "Runs",
        ":material/folder_open:",
        "every run in one table: open, rename, delete, download or upload a checkpoint.",
    ),
    (
        "explore.py",
        "Latent explorer",
        ":material/explore:",
        "move through the latent space and see the decoded image follow.",
    ),
    (
        "conditional.py",
        "Conditional sampling",
        ":material/category:",
        "ask a conditional model for images of a chosen class.",
    ),
    (
        "embeddings.py",
        "Embeddings",
        ":material/scatter_plot:",
        "the test set's codes as a scatter plot (the model's own, PCA or UMAP).",
    ),
    (
        "compare.py",
        "Compare runs",
        ":material/compare:",
        "two runs side by side: curves, reconstructions, metrics.",
    ),
]
cols = st.columns(3)
for i, (file, title, icon, what) in enumerate(PAGES):
    with cols[i % 3].container(border=True, height="stretch"):
        st.page_link(page_path(file), label=title, icon=icon)
        st.caption(what)

st.subheader("Quick start")
st.markdown(
    "Train a first model in about a minute: a VAE with a 2-D latent plane on the bundled "
    "8×8 digits (no download), 20 epochs. The Train page then shows it learning."
)
if st.button("Train a VAE on digits", type="primary", icon=":material/rocket_launch:"):
    from core import jobs
    from core.train_config import TrainConfig

    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=20, batch_size=64)
    try:
        run = jobs.start(cfg, {"latent_dim": 2}, "first-vae-digits", root=runs_root())
    except ValueError as e:
        st.error(md_escape(str(e)))
    except OSError as e:  # a full disk, an unwritable runs folder: one sentence
        st.error(md_escape(os_error_sentence(e, "The run could not be started")))
    else:
        st.session_state["train.requested"] = run.id
        st.switch_page(page_path("train.py"))

st.subheader("Current run")
run = current_run()
if run is None:
    st.info("No run picked yet: train one above, or pick one in the sidebar.")
else:
    run_card(run)
    st.caption("Change it with the run picker in the sidebar, or on the Runs page.")
