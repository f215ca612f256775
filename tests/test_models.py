"""Models: the Nanda architecture, two-hot MLP, causal GPT, and vmap over stacked members."""

import pytest
import torch
import torch.nn.functional as F

from workbench import models as Mo
from workbench import tasks as T

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny ops: 1 thread is fastest


def test_nanda_shapes_and_param_count():
    ds = T.modular(p=113, frac=0.3)
    m = Mo.build_model("auto", {}, ds)
    assert isinstance(m, Mo.NandaTransformer)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes["W_E"] == (114, 128) and shapes["W_U"] == (128, 113) and shapes["W_pos"] == (3, 128)
    assert shapes["W_Q"] == (4, 128, 32) and shapes["W_in"] == (128, 512)
    assert not any("ln" in n.lower() for n in shapes)                  # no LayerNorm
    assert m(ds.x_train[:5]).shape == (5, 113)


def test_nanda_attention_is_causal_and_reads_last_position():
    ds = T.modular(p=7, frac=0.5)
    torch.manual_seed(0)
    m = Mo.build_model("nanda", {"d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}, ds)
    x = ds.x_train[:4]
    # changing b changes the output (the "=" position attends to it)
    x2 = x.clone()
    x2[:, 1] = (x2[:, 1] + 1) % 7
    assert not torch.allclose(m(x), m(x2))


def test_twohot_mlp_equals_linear_on_concatenated_one_hot():
    ds = T.modular(p=11, frac=0.5)
    torch.manual_seed(0)
    m = Mo.build_model("mlp", {"hidden": [20], "bias": False}, ds)
    assert m.cfg.d_in == 22 and m.cfg.embed == "twohot"
    x = ds.x_train[:8]
    oh = torch.cat([F.one_hot(x[:, 0], 11), F.one_hot(x[:, 1], 11)], 1).float()
    W1, W2 = m.layers[0].weight, m.layers[1].weight
    torch.testing.assert_close(m(x), F.relu(oh @ W1.T) @ W2.T)


def test_init_scale_multiplies_weights():
    ds = T.digits(n_train=100)
    torch.manual_seed(1)
    a = Mo.build_model("mlp", {"hidden": [8]}, ds)
    torch.manual_seed(1)
    b = Mo.build_model("mlp", {"hidden": [8], "init_scale": 8.0}, ds)
    torch.testing.assert_close(b.layers[0].weight, 8 * a.layers[0].weight)


def test_gpt_is_causal():
    ds = T.lm(seq_len=12, max_chars=5000)
    torch.manual_seed(0)
    m = Mo.build_model("auto", {"width": 32, "depth": 2, "n_heads": 4}, ds)
    x, _ = ds.batch("train", torch.tensor([0, 7]))
    x2 = x.clone()
    x2[:, 8:] = (x2[:, 8:] + 3) % 96
    a, b = m(x), m(x2)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])
    assert m.n_params(non_embedding=False) > m.n_params()


def test_gpt_family_grid():
    fam = Mo.gpt_family([32, 64], [1, 2])
    assert len(fam) == 4 and {"width": 64, "depth": 2, "n_heads": 4} in fam


@pytest.mark.parametrize("name,params,task", [
    ("nanda", {"d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}, ("modular", {"p": 7})),
    ("mlp", {"hidden": [8, 8], "layernorm": True, "bias": False}, ("digits", {"n_train": 50})),
    ("gpt", {"width": 16, "depth": 1, "n_heads": 2}, ("lm", {"seq_len": 8, "max_chars": 3000})),
])
def test_vmap_over_stacked_members_equals_each_member(name, params, task):
    ds = T.make_task(*task)
    ms = []
    for s in range(3):
        torch.manual_seed(s)
        ms.append(Mo.build_model(name, params, ds))
    stacked, _ = torch.func.stack_module_state(ms)
    base = ms[0]
    x, _ = ds.batch("train", torch.arange(5))
    out = torch.func.vmap(lambda p, xx: torch.func.functional_call(base, p, (xx,)), in_dims=(0, None))(stacked, x)
    for i, m in enumerate(ms):
        torch.testing.assert_close(out[i], m(x), rtol=1e-5, atol=1e-6)


def test_bad_model_configs():
    ds = T.modular(p=7)
    with pytest.raises(Mo.ModelError, match="model: must be one of"):
        Mo.build_model("resnet", {}, ds)
    with pytest.raises(Mo.ModelError, match="model_params: unknown parameter 'depth'"):
        Mo.build_model("nanda", {"depth": 2}, ds)
    with pytest.raises(Mo.ModelError, match="d_model: must be an integer >= 1"):
        Mo.build_model("nanda", {"d_model": 0}, ds)
    with pytest.raises(Mo.ModelError, match="'gpt' needs the lm task"):
        Mo.build_model("gpt", {}, ds)


@pytest.mark.parametrize("name, params, task", [
    ("nanda", {"d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32}, "modular"),
    ("mlp", {"hidden": [20, 10], "init_scale": 2.0}, "modular"),
    ("mlp", {"hidden": [8], "bias": False, "layernorm": True}, "digits"),
    ("gpt", {"width": 32, "depth": 2, "n_heads": 4}, "lm")])
def test_a_generator_gives_the_seeded_weights_without_touching_the_global_rng(name, params, task):
    # a run owns its randomness: build_model(..., generator=) draws only from the generator, and gives the
    # weights a build after torch.manual_seed(seed) gives (torch's default initialisation, same order)
    ds = T.make_task(task, {"p": 13} if task == "modular" else ({"n_train": 50} if task == "digits" else {}), seed=0)
    torch.manual_seed(7)
    ref = Mo.build_model(name, params, ds).state_dict()
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    got = Mo.build_model(name, params, ds, generator=torch.Generator().manual_seed(7)).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    assert list(got) == list(ref) and all(torch.equal(got[k], ref[k]) for k in ref)
    other = Mo.build_model(name, params, ds, generator=torch.Generator().manual_seed(8)).state_dict()
    assert any(not torch.equal(other[k], ref[k]) for k in ref)
