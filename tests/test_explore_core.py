"""core.explore: planes and bases, grid decoding in one batch, encoding, diagnostics,
interpolation, categorical helpers, picture preparation and image encoders."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from core import explore as ex
from core.data import load
from core.metrics import active_units
from core.models import FAMILIES, build_model
from core.uploads import picture_from_data_url


def tiny(name, shape=(1, 8, 8), **kw):
    torch.manual_seed(0)
    args = {"hidden_dim": 16, "num_classes": 10, "num_items": 12, "image_shape": shape}
    if name == "conv-vae":
        args["channels"] = (4, 8)
    return build_model(name, **{**args, **kw}).eval()


def data_z(n=200, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)) * np.array([3.0, 1.0, 0.5, 0.1][:dim]) + 2.0).astype(
        np.float32
    )


# ----------------------------------------------------------------------------- bases, planes
def test_dims_basis_is_the_identity():
    z = data_z(dim=3)
    b = ex.dims_basis(3, z)
    np.testing.assert_allclose(b.scores(z), z, atol=1e-5)
    np.testing.assert_allclose(b.latent(b.scores(z)), z, atol=1e-5)
    assert b.names == ("z0", "z1", "z2")
    np.testing.assert_allclose(b.variance, z.var(0), rtol=1e-5)


def test_pca_basis_orthonormal_sorted_and_deterministic():
    z = data_z()
    b = ex.pca_basis(z)
    np.testing.assert_allclose(b.vectors @ b.vectors.T, np.eye(4), atol=1e-8)
    assert np.all(np.diff(b.variance) <= 1e-9), "variance must decrease"
    np.testing.assert_allclose(b.center, z.mean(0), atol=1e-6)
    # the scores of the encoded set have the stated variances and are uncorrelated
    s = b.scores(z)
    np.testing.assert_allclose(np.cov(s.T), np.diag(b.variance), atol=1e-6)
    # the first direction follows the axis with the largest spread (std 3 on z0)
    assert abs(b.vectors[0, 0]) > 0.99 and b.vectors[0, 0] > 0
    # same data, same axes; scores -> latent round trip
    np.testing.assert_array_equal(ex.pca_basis(z).vectors, b.vectors)
    np.testing.assert_allclose(b.latent(s), z, atol=1e-5)


def test_pca_basis_with_fewer_points_than_dimensions_completes_the_basis():
    b = ex.pca_basis(np.random.default_rng(0).normal(size=(3, 6)))
    np.testing.assert_allclose(b.vectors @ b.vectors.T, np.eye(6), atol=1e-8)
    assert b.variance[2:].max() < 1e-12
    with pytest.raises(ValueError, match="two encoded points"):
        ex.pca_basis(np.zeros((1, 3)))


@pytest.mark.parametrize("kind", ["dims", "pca"])
def test_plane_round_trip_and_fixed_coordinates(kind):
    z = data_z()
    b = ex.pca_basis(z) if kind == "pca" else ex.dims_basis(4, z)
    fixed = np.array([0.3, -0.7, 1.1, 0.25])
    plane = ex.Plane(b, 2, 0, fixed)
    uv = np.array([[0.5, -1.2], [2.0, 3.0], [0.0, 0.0]])
    zz = plane.to_z(uv)
    assert zz.shape == (3, 4) and zz.dtype == np.float32
    np.testing.assert_allclose(plane.to_uv(zz), uv, atol=1e-5)
    s = b.scores(zz)
    np.testing.assert_allclose(s[:, 1], -0.7, atol=1e-5)  # the other coordinates stay
    np.testing.assert_allclose(s[:, 3], 0.25, atol=1e-5)
    np.testing.assert_allclose(s[:, 2], uv[:, 0], atol=1e-5)  # horizontal axis = coordinate 2
    assert plane.names == (b.names[2], b.names[0])


def test_plane_rejects_bad_axes():
    b = ex.dims_basis(3)
    with pytest.raises(ValueError, match="two different axes"):
        ex.Plane(b, 1, 1)
    with pytest.raises(ValueError, match="coordinates 0..2"):
        ex.Plane(b, 0, 3)
    with pytest.raises(ValueError, match="fixed must hold 3"):
        ex.Plane(b, 0, 1, np.zeros(2))
    one = ex.Plane(ex.dims_basis(1), 0, 0)  # a 1-D latent: v is always 0
    np.testing.assert_allclose(one.to_uv(np.array([[2.5]])), [[2.5, 0.0]])


def test_plane_extent_is_mean_plus_minus_std():
    z = data_z()
    plane = ex.Plane(ex.dims_basis(4), 0, 1)
    (u0, u1), (v0, v1) = ex.plane_extent(plane, z, 2.0)
    assert u0 == pytest.approx(z[:, 0].mean() - 2 * z[:, 0].std(), rel=1e-4)
    assert v1 == pytest.approx(z[:, 1].mean() + 2 * z[:, 1].std(), rel=1e-4)


def test_grid_uv_order_and_ends():
    g = ex.grid_uv(((-1.0, 1.0), (-2.0, 2.0)), 3)
    assert g.shape == (9, 2)
    np.testing.assert_allclose(g[0], [-1, 2])  # top-left: u min, v max
    np.testing.assert_allclose(g[2], [1, 2])  # top-right
    np.testing.assert_allclose(g[8], [1, -2])  # bottom-right
    np.testing.assert_allclose(ex.grid_uv(((0, 2), (0, 4)), 1), [[1, 2]])
    with pytest.raises(ValueError):
        ex.grid_uv(((0, 1), (0, 1)), 0)


# ----------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("name", [n for n, s in FAMILIES.items() if s.model.encodes])
def test_grid_equals_per_point_decode(name):
    m = tiny(name, latent_dim=3)
    y = 4 if m.conditional else None
    b = ex.pca_basis(np.random.default_rng(1).normal(size=(50, m.latent_dim)))
    plane = ex.Plane(b, 0, 1)
    extent = ((-2.0, 2.0), (-1.0, 1.5))
    grid = ex.decode_grid(m, plane, extent, 5, y)
    assert grid.shape == (25, *m.image_shape)
    assert float(grid.min()) >= 0 and float(grid.max()) <= 1
    uv = ex.grid_uv(extent, 5)
    with torch.no_grad():
        for k in (0, 7, 24):
            z = torch.as_tensor(plane.to_z(uv[k : k + 1]))
            one = m.decode(z, torch.tensor([y]) if y is not None else None)[0]
            torch.testing.assert_close(grid[k], one, atol=1e-5, rtol=1e-4)


def test_decode_points_batches_and_conditional_label():
    m = tiny("cvae", latent_dim=2)
    z = np.random.default_rng(0).normal(size=(7, 2))
    a = ex.decode_points(m, z, 3, batch=3)
    b = ex.decode_points(m, z, 3, batch=100)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, ex.decode_points(m, z, 5))
    with pytest.raises(ValueError, match="conditional"):
        ex.decode_points(m, z)


def test_encode_set_per_latent_kind():
    x = torch.rand(9, 1, 8, 8)
    y = torch.randint(0, 10, (9,))
    g = ex.encode_set(tiny("mlp-vae", latent_dim=3), x, batch=4)
    assert g["z"].shape == (9, 3) and g["kl_dims"].shape == (9, 3)
    assert (g["kl_dims"] >= -1e-6).all()
    c = ex.encode_set(tiny("cvae", latent_dim=2), x, y)
    assert c["z"].shape == (9, 2)
    d = ex.encode_set(tiny("ae", latent_dim=3), x)
    assert d["z"].shape == (9, 3) and "kl_dims" not in d
    gm = tiny("gumbel-vae", latent_dim=4, categories=5)
    q = ex.encode_set(gm, x)
    assert q["z"].shape == (9, 20) and q["logits"].shape == (9, 4, 5)
    np.testing.assert_allclose(q["z"].reshape(9, 4, 5).sum(-1), 1, atol=1e-5)
    assert q["kl_dims"].shape == (9, 4)
    # a cvae with a learned prior per label: the KL is taken to each label's Gaussian
    cm = tiny("cvae", latent_dim=2)
    with torch.no_grad():
        cm.prior_mu.copy_(torch.arange(20.0).view(10, 2) / 5)
    c = ex.encode_set(cm, x, y)
    with torch.no_grad():
        want = cm(x, y).stats["kl_dims"].numpy()
    np.testing.assert_allclose(c["kl_dims"], want, rtol=1e-5, atol=1e-6)
    # no encoder (autodecoder): each image is placed by optimisation; no KL term
    ad = tiny("autodecoder", latent_dim=2, infer_steps=3)
    assert not ad.encodes
    a = ex.encode_set(ad, x)
    assert a["z"].shape == (9, 2) and "kl_dims" not in a and "logits" not in a


@pytest.mark.parametrize("name", ["mlp-vae", "gumbel-vae", "autodecoder", "cvae"])
def test_place_image(name):
    m = tiny(name, latent_dim=2)
    x = torch.rand(1, 8, 8)
    res = ex.place_image(m, x, 1 if m.conditional else None, steps=5)
    assert res["recon"].shape == (1, 8, 8)
    assert res["latent"].shape == (m.latent_dim,)
    assert res["z"].shape == (m.latent_dim,)
    if name == "autodecoder":
        assert len(res["trace"]) == 5
    else:
        assert res["trace"] is None


def test_diagnostics_flags_collapsed_dimensions():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(300, 3)).astype(np.float32)
    mu[:, 1] = 0.001 * rng.normal(size=300)  # a collapsed dimension
    logvar = np.zeros_like(mu)
    kl = -0.5 * (1 + logvar - mu**2 - np.exp(logvar))
    d = ex.diagnostics("gaussian", {"z": mu, "kl_dims": kl})
    assert d["active"] == active_units(torch.as_tensor(mu))[0] == 2
    assert d["active_mask"] == [True, False, True]
    assert d["values"][1] < 0.01 < d["values"][0]
    e = ex.diagnostics(None, {"z": mu})  # what is measured follows from the encoded set
    assert e["measure"].startswith("variance") and e["active"] == 2
    logits = np.zeros((50, 2, 3), np.float32)
    logits[:, 0] = rng.normal(size=(50, 3)) * 5  # variable 0 varies, variable 1 is uniform
    q = torch.as_tensor(logits).softmax(-1)
    kl_cat = (q * q.log()).sum(-1) + math.log(3)
    c = ex.diagnostics("categorical", {"z": q.flatten(1).numpy(), "logits": logits,
                                       "kl_dims": kl_cat.numpy()})  # fmt: skip
    assert c["active_mask"] == [True, False] and c["unit"] == "variable"


# ----------------------------------------------------------------------------- interpolation
def test_lerp_endpoints_and_midpoint():
    a, b = np.array([0.0, 2.0]), np.array([4.0, -2.0])
    p = ex.lerp(a, b, 5)
    assert p.shape == (5, 2)
    np.testing.assert_allclose(p[0], a)
    np.testing.assert_allclose(p[-1], b)
    np.testing.assert_allclose(p[2], [2.0, 0.0])


def test_slerp_endpoints_norms_and_equal_angles():
    a, b = np.array([3.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    p = ex.slerp(a, b, 7)
    np.testing.assert_allclose(p[0], a, atol=1e-6)
    np.testing.assert_allclose(p[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), np.linspace(3, 1, 7), atol=1e-5)
    unit = p / np.linalg.norm(p, axis=1, keepdims=True)
    angles = np.arccos(np.clip((unit[1:] * unit[:-1]).sum(1), -1, 1))
    np.testing.assert_allclose(angles, np.pi / 2 / 6, atol=1e-5)
    # the path stays away from the origin, unlike the straight line's middle
    assert np.linalg.norm(p, axis=1).min() > np.linalg.norm(ex.lerp(a, b, 7), axis=1).min()
    np.testing.assert_allclose(ex.slerp(a, 2 * a, 3), ex.lerp(a, 2 * a, 3))  # parallel


def test_interpolate_decodes_the_path():
    m = tiny("mlp-vae", latent_dim=2)
    res = ex.interpolate(m, [0, 0], [1, 1], 4, "spherical")
    assert res["z"].shape == (4, 2) and res["images"].shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="Unknown interpolation"):
        ex.interpolate(m, [0, 0], [1, 1], 4, "cubic")
    with pytest.raises(ValueError, match="at least 2"):
        ex.interpolate(m, [0, 0], [1, 1], 1)


# ----------------------------------------------------------------------------- categorical
def test_categorical_helpers():
    np.testing.assert_array_equal(ex.onehot_choice([2, 0], 3), [0, 0, 1, 1, 0, 0])
    with pytest.raises(ValueError):
        ex.onehot_choice([3], 3)
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    lg = ex.logits_with_choice(logits, [2, 2])
    assert lg[0].argmax() == 2 and lg[1].argmax() == 2
    np.testing.assert_allclose(np.sort(lg[0]), np.sort(logits[0]))
    np.testing.assert_allclose(lg[1], logits[1])  # already the top category: unchanged
    cold = ex.relaxed_samples(lg * 10, 0.05, 6, seed=1)
    hot = ex.relaxed_samples(lg, 50.0, 6, seed=1)
    assert cold.shape == (6, 6)
    np.testing.assert_allclose(cold.reshape(6, 2, 3).sum(-1), 1, atol=1e-5)
    assert cold.reshape(6, 2, 3).max(-1).min() > 0.99  # nearly one-hot
    assert hot.reshape(6, 2, 3).max(-1).max() < 0.5  # nearly uniform
    np.testing.assert_array_equal(ex.relaxed_samples(lg, 1, 3, 7), ex.relaxed_samples(lg, 1, 3, 7))
    with pytest.raises(ValueError, match="positive"):
        ex.relaxed_samples(lg, 0, 1)


# ----------------------------------------------------------------------------- pictures in
def test_dataset_style_of_digits():
    test = load("digits", "test")
    s = ex.dataset_style(test.images)
    assert s["dark_background"] is True
    assert 0.5 < s["ink_extent"] <= 1
    assert ex.dataset_style(1 - test.images)["dark_background"] is False


def test_prepare_image_inverts_crops_and_centres():
    pic = np.full((100, 140), 255, np.uint8)  # black ink on white, off-centre
    pic[10:40, 100:110] = 0
    x = ex.prepare_image(pic, (1, 28, 28), dark_background=True, ink_extent=20 / 28)
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert float(x[0, 0].mean()) < 0.05  # background now dark
    ys, xs = torch.nonzero(x[0] > 0.5, as_tuple=True)
    assert abs(float(ys.float().mean()) - 13.5) < 2 and abs(float(xs.float().mean()) - 13.5) < 2
    assert int(ys.max() - ys.min() + 1) in range(18, 22)  # the stroke spans ~20 of 28 rows
    same = ex.prepare_image(255 - pic, (1, 28, 28), dark_background=True, ink_extent=20 / 28)
    torch.testing.assert_close(x, same)  # already white on black: no inversion


def test_prepare_image_rgb_transparency_and_errors():
    rgba = Image.new("RGBA", (50, 40), (0, 0, 0, 0))  # fully transparent -> white
    x = ex.prepare_image(rgba, (3, 32, 32), dark_background=False)
    assert x.shape == (3, 32, 32)
    assert float(x.min()) > 0.99
    gray = ex.prepare_image(np.zeros((10, 10)), (1, 8, 8), dark_background=True, fit=False)
    assert gray.shape == (1, 8, 8) and float(gray.max()) == 0
    with pytest.raises(ValueError, match="1- or 3-channel"):
        ex.prepare_image(rgba, (2, 8, 8))


def test_picture_from_data_url_round_trip():
    png = ex.png_bytes(np.full((4, 6, 1), 200, np.uint8))
    img = picture_from_data_url(ex.data_url(png))
    assert img.size == (6, 4) and np.asarray(img).max() == 200
    with pytest.raises(ValueError, match="did not arrive as an image"):
        picture_from_data_url("hello")
    with pytest.raises(ValueError, match="not a picture"):
        picture_from_data_url("data:image/png;base64,AAAA")


# ----------------------------------------------------------------------------- pictures out
def test_sprite_layout_and_png():
    imgs = torch.stack([torch.full((1, 2, 3), k / 10) for k in range(5)])
    s = ex.sprite(imgs, 2)
    assert s.shape == (3 * 2, 2 * 3, 1) and s.dtype == np.uint8
    assert s[0, 0, 0] == 0 and s[0, 3, 0] == 26 and s[2, 0, 0] == 51 and s[4, 0, 0] == 102
    assert s[4, 3, 0] == 255  # the empty sixth cell stays white
    padded = ex.sprite(imgs, 5, pad=1)
    assert padded.shape == (2, 5 * 4 - 1, 1)
    back = np.asarray(Image.open(io.BytesIO(ex.png_bytes(s, scale=2))))
    assert back.shape == (12, 12) and back[0, 0] == 0
    rgb = ex.sprite(torch.rand(3, 3, 4, 4), 3)
    assert rgb.shape == (4, 12, 3)


def test_strip_and_gif():
    imgs = torch.rand(4, 1, 5, 5)
    st_ = ex.strip(imgs, scale=2, pad=1)
    assert st_.shape == (10, 2 * (4 * 6 - 1), 1)
    gif = Image.open(io.BytesIO(ex.gif_bytes(imgs, scale=3)))
    assert gif.format == "GIF" and gif.size == (15, 15)
    assert gif.n_frames == 6  # forward 4, back 2 (bounce)
    assert Image.open(io.BytesIO(ex.gif_bytes(imgs, bounce=False))).n_frames == 4
    with pytest.raises(ValueError):
        ex.gif_bytes(torch.zeros(0, 1, 2, 2))


# ----------------------------------------------------------------------------- URL values
def test_url_values():
    assert ex.parse_pair("0.5,-1.2") == (0.5, -1.2)
    assert ex.parse_pair(" 1e-3 , 2 ") == (0.001, 2.0)
    for bad in (None, "", "1", "a,b", "1,2,3", "nan,1", "inf,2"):
        assert ex.parse_pair(bad) is None
    assert ex.parse_pair(ex.format_pair((0.123456, -2.5))) == (0.1235, -2.5)
    assert ex.parse_axes("z0,z3", 4) == ("dims", 0, 3)
    assert ex.parse_axes("pc1,PC2", 4) == ("pca", 0, 1)
    for bad in ("z0,z4", "pc0,pc1", "z1,z1", "z0,pc1", "x,y", None):
        assert ex.parse_axes(bad, 4) is None
    assert ex.parse_axes(ex.format_axes("pca", 2, 0), 3) == ("pca", 2, 0)


def test_table_items_follow_the_trainer():
    train = load("digits", "train")
    assert ex.table_items(train) is train
    sub = ex.table_items(train, 100, seed=3)
    torch.testing.assert_close(sub.labels, train.subset(100, seed=3).labels)


# ----------------------------------------------------------------------------- conditional
def test_conditional_helpers():
    m = tiny("cvae", latent_dim=2)
    with torch.no_grad():  # a learned prior per label: label c's codes centre on (c, -c)
        m.prior_mu.copy_(torch.stack([torch.arange(10.0), -torch.arange(10.0)], 1))
        m.prior_logvar.fill_(math.log(0.25))
    assert ex.conditional_samples(m, 3, 5, seed=1).shape == (5, 1, 8, 8)
    grid = ex.class_z_grid(m, 4, seed=2)
    assert grid.shape == (40, 1, 8, 8)
    eps = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
    z7 = torch.tensor([7.0, -7.0]) + 0.5 * eps  # column j: the same place in each Gaussian
    with torch.no_grad():
        torch.testing.assert_close(grid[7 * 4 : 8 * 4], m.decode(z7, torch.tensor(7)))
    swap = ex.class_swap(m, torch.rand(1, 8, 8), 3)
    assert swap["images"].shape == (10, 1, 8, 8)
    latent = torch.as_tensor(swap["latent"])[None]
    with torch.no_grad():
        again = m.decode(latent, torch.tensor([3]))[0]
        moved = m.decode(latent + torch.tensor([2.0, -2.0]), torch.tensor([5]))[0]
    torch.testing.assert_close(swap["images"][3], again)
    torch.testing.assert_close(swap["images"][5], moved)
    kept = ex.class_swap(m, torch.rand(1, 8, 8), 3, move=False)  # the same code, new label
    with torch.no_grad():
        same = m.decode(torch.as_tensor(kept["latent"])[None], torch.tensor([5]))[0]
    torch.testing.assert_close(kept["images"][5], same)
    with pytest.raises(ValueError, match="not conditional"):
        ex.class_z_grid(tiny("mlp-vae", latent_dim=2), 2)
    with pytest.raises(ValueError, match="0..9"):
        ex.conditional_samples(m, 10, 2)


def test_torch_threads_is_scoped():
    before = torch.get_num_threads()
    with ex.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with ex.torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), ex.torch_threads(1):
        raise RuntimeError("restored even on errors")
    assert torch.get_num_threads() == before
