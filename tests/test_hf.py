"""Hugging Face transformers models (scaling.hf): GPT-2 (Conv1D, tied readout) and Llama (RMSNorm, rotary,
grouped-query attention, SwiGLU, untied readout), built from configs; nothing is downloaded.

The theory: TP-V Table 3 relative to the model's own init (N(0, 0.02) at every width), Table 8 for a
tied readout, attention 1/d_head (§4) through the attention's own ``scaling``; the same per-parameter
learning rates as microsoft/mup on the same GPT-2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

transformers = pytest.importorskip("transformers")

import scaling.hf as hf  # noqa: E402
from scaling import parameterize  # noqa: E402
from scaling.coord import coord_check  # noqa: E402
from scaling.data import load_dataset  # noqa: E402
from scaling.errors import ScalingError  # noqa: E402

FAMILIES = {"gpt2": transformers.GPT2LMHeadModel, "llama": transformers.LlamaForCausalLM}
BASE, WIDTH = 64, 256


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(family: str, width: int, seed: int = 0, **options: Any) -> Any:
    torch.manual_seed(seed)
    return FAMILIES[family](hf.causal_lm_config(family, width, **options))


def _tokens(seed: int = 0) -> Tensor:
    return torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("family", "tied"), [("gpt2", True), ("gpt2", False), ("llama", False), ("llama", True)])
def test_base_width_is_the_model_bit_for_bit(family: str, tied: bool) -> None:
    """At base width (widths known from a delta) every row leaves transformers' model exactly as built."""
    for row in ("mup", "mup-table8", "sp") if not tied else ("mup-table8", "sp"):
        plain = _model(family, BASE, tie_word_embeddings=tied)
        ours = _model(family, BASE, tie_word_embeddings=tied)
        hf.parameterize(ours, hf.causal_lm_config(family, BASE, tie_word_embeddings=tied),
                        delta=hf.causal_lm_config(family, 2 * BASE, tie_word_embeddings=tied), parameterization=row)
        for (name, p), q in zip(plain.named_parameters(), ours.parameters()):
            assert torch.equal(p, q), (row, name)
        x = _tokens()
        assert torch.equal(plain(input_ids=x).logits, ours(input_ids=x).logits), row


def _std(model: Any, name: str) -> float:
    return float(dict(model.named_parameters())[name].detach().double().std())


def test_llama_init_shrinks_from_its_own_as_table_3_says() -> None:
    """Untied Llama under muP: hidden weights 0.02 m^-1/2, the readout 0.02 m^-1, embeddings and norms as built."""
    m = WIDTH / BASE
    model = _model("llama", WIDTH)
    plan = hf.parameterize(model, hf.causal_lm_config("llama", BASE))
    assert plan.parameterization.name == "mup" and plan.init == "own"
    std = 0.02  # LlamaConfig.initializer_range
    assert _std(model, "model.layers.0.self_attn.q_proj.weight") == pytest.approx(std * m**-0.5, rel=0.03)
    assert _std(model, "model.layers.0.mlp.down_proj.weight") == pytest.approx(std * m**-0.5, rel=0.03)
    assert _std(model, "lm_head.weight") == pytest.approx(std / m, rel=0.03)
    assert _std(model, "model.embed_tokens.weight") == pytest.approx(std, rel=0.03)
    assert torch.equal(model.model.norm.weight, torch.ones(WIDTH))
    assert plan.widths["lm_head.weight"].role == "output"
    # Adam learning rates, TP-V Table 3: hidden and output 1/m (fan-in), input and vectors 1.
    assert plan.lr_multiplier("model.layers.0.mlp.up_proj.weight", "adam") == pytest.approx(1 / m)
    assert plan.lr_multiplier("lm_head.weight", "adam") == pytest.approx(1 / m)
    for name in ("model.embed_tokens.weight", "model.norm.weight"):
        assert plan.lr_multiplier(name, "adam") == 1.0


def test_gpt2_conv1d_reads_fan_in_from_dimension_0() -> None:
    """GPT-2's Conv1D stores (in, out): c_fc (n -> 4n) and c_proj (4n -> n) are hidden weights whose
    fan-in multiplier is dimension 0's; tied, the readout takes Table 8's 1/m multiplier."""
    m = WIDTH / BASE
    model = _model("gpt2", WIDTH)
    plan = hf.parameterize(model, hf.causal_lm_config("gpt2", BASE))
    assert plan.parameterization.name == "mup-table8"  # the tied default
    for name in ("transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight",
                 "transformer.h.0.attn.c_attn.weight"):
        w = plan.widths[name]
        assert (w.role, w.m_in, w.m_out) == ("hidden", m, m), name
    assert plan.widths["transformer.h.0.mlp.c_fc.bias"].role == "vector"
    assert plan.multipliers == {"lm_head": pytest.approx(1 / m)}
    assert _std(model, "transformer.h.0.mlp.c_fc.weight") == pytest.approx(0.02 * m**-0.5, rel=0.03)
    # GPT-2's own residual-projection init, 0.02 / sqrt(2 n_layer), shrinks from itself.
    assert _std(model, "transformer.h.0.mlp.c_proj.weight") == pytest.approx(0.02 / math.sqrt(4) * m**-0.5, rel=0.03)
    assert _std(model, "transformer.wte.weight") == pytest.approx(0.02, rel=0.03)


def test_a_tied_readout_under_table_3_is_refused_and_nothing_changes() -> None:
    model = _model("gpt2", WIDTH)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ScalingError, match="tied"):
        hf.parameterize(model, hf.causal_lm_config("gpt2", BASE), parameterization="mup")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_attention_scale_is_one_over_head_dim_through_its_own_scaling(family: str) -> None:
    """Head dimension 16 -> 64 (heads fixed): the logit scale is sqrt(16)/64, the model's own 1/sqrt(d) at
    base; with the head dimension fixed (more heads) it stays the model's own."""
    base = hf.causal_lm_config(family, BASE)
    wide = hf.scaled_config(base, WIDTH, keep="heads")
    torch.manual_seed(0)
    model = FAMILIES[family](wide)
    plan = hf.parameterize(model, base)
    attention = [m for m in model.modules() if type(m).__name__.endswith("Attention")]
    assert attention and all(a.head_dim == 64 for a in attention)
    assert all(a.scaling == pytest.approx(math.sqrt(16) / 64) for a in attention)
    assert list(plan.attention_scales.values()) == pytest.approx([0.5] * len(attention))
    fixed = _model(family, WIDTH)  # head_dim 16 at every width
    hf.parameterize(fixed, base)
    assert all(a.scaling == pytest.approx(16**-0.5) for a in fixed.modules() if type(a).__name__.endswith("Attention"))


def test_attention_that_computes_its_scale_inline_is_an_error_naming_it() -> None:
    base = hf.causal_lm_config("llama", BASE)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(hf.scaled_config(base, WIDTH, keep="heads"))
    for module in model.modules():
        if type(module).__name__ == "LlamaAttention":
            del module.scaling
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ScalingError, match=r"model\.layers\.0\.self_attn.*inline"):
        hf.parameterize(model, base)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bad_bases_are_clear_errors_that_change_nothing() -> None:
    model = _model("llama", WIDTH)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ScalingError, match="GPT2Config.*LlamaConfig"):
        hf.parameterize(model, hf.causal_lm_config("gpt2", BASE))
    with pytest.raises(ScalingError, match="no width"):
        hf.parameterize(model, hf.causal_lm_config("llama", WIDTH))
    with pytest.raises(ScalingError, match="readout has 256 outputs against the base's 128"):
        hf.parameterize(model, hf.causal_lm_config("llama", BASE, vocab_size=128))
    with pytest.raises(ScalingError, match="not a positive integer"):
        hf.scaled_config(hf.causal_lm_config("llama", BASE), 72)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert hf.record_of(model.config) is None


def test_same_learning_rates_as_microsoft_mup_on_transformers_gpt2() -> None:
    """microsoft/mup on the same GPT-2, its MuSharedReadout swapped in for the tied lm_head by hand:
    MuAdam's per-parameter learning rates equal ours under mup-table8."""
    mup = pytest.importorskip("mup")

    def theirs_at(width: int) -> Any:
        model = _model("gpt2", width)
        model.lm_head = mup.MuSharedReadout(model.transformer.wte.weight, bias=False)
        return model

    theirs = theirs_at(WIDTH)
    mup.set_base_shapes(theirs, theirs_at(BASE), delta=theirs_at(2 * BASE))
    optimizer = mup.MuAdam(theirs.parameters(), lr=1e-2)
    their_lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    names = {id(p): n for n, p in theirs.named_parameters()}
    ours = _model("gpt2", WIDTH)
    plan = hf.parameterize(ours, hf.causal_lm_config("gpt2", BASE), delta=hf.causal_lm_config("gpt2", 2 * BASE))
    our_lr = {n: 1e-2 * plan.lr_multiplier(n, "adam") for n, _ in ours.named_parameters()}
    for pid, lr in their_lr.items():
        assert our_lr[names[pid]] == pytest.approx(lr), names[pid]
    assert len(their_lr) == len(our_lr)
    # microsoft/mup leaves transformers' N(0, 0.02) hidden init alone (its users re-initialize); with our
    # weights copied in, the two compute the same logits: the same readout multiplier 1/m.
    with torch.no_grad():
        mine = dict(ours.named_parameters())
        for n, p in theirs.named_parameters():
            p.copy_(mine[n])
    x = _tokens()
    assert torch.allclose(theirs(input_ids=x).logits, ours(input_ids=x).logits, atol=1e-6)


def test_save_and_reload_keep_the_multipliers_and_scales(tmp_path: Path) -> None:
    """save_pretrained / from_pretrained: the reloaded model computes what the saved one did (the readout's
    1/m and the attention scale are not weights); transformers' own loader alone would not."""
    base = hf.causal_lm_config("gpt2", BASE)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(hf.scaled_config(base, WIDTH, keep="heads"))
    hf.parameterize(model, base)
    hf.save_pretrained(model, tmp_path / "ckpt")
    loaded, plan = hf.from_pretrained(tmp_path / "ckpt")
    x = _tokens()
    assert torch.equal(model(input_ids=x).logits, loaded(input_ids=x).logits)
    assert plan.multipliers == {"lm_head": pytest.approx(BASE / WIDTH)}
    plain = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ckpt")
    assert not torch.allclose(model(input_ids=x).logits, plain(input_ids=x).logits)


def test_loading_across_parameterized_and_plain_is_an_error(tmp_path: Path) -> None:
    base = hf.causal_lm_config("llama", BASE)
    plain = _model("llama", WIDTH)
    plain.save_pretrained(tmp_path / "plain")
    ours = _model("llama", WIDTH, seed=1)
    hf.parameterize(ours, base)
    hf.save_pretrained(ours, tmp_path / "ours")
    before = [p.clone() for p in ours.parameters()]
    with pytest.raises(ScalingError, match="unparameterized checkpoint into a parameterized model"):
        hf.load_checkpoint(ours, tmp_path / "plain")
    assert all(torch.equal(a, b) for a, b in zip(before, ours.parameters()))
    with pytest.raises(ScalingError, match="parameterized checkpoint into an unparameterized model"):
        hf.load_checkpoint(_model("llama", WIDTH), tmp_path / "ours")
    with pytest.raises(ScalingError, match="unparameterized"):
        hf.from_pretrained(tmp_path / "plain")
    other = _model("llama", WIDTH, seed=2)
    hf.parameterize(other, base)
    hf.load_checkpoint(other, tmp_path / "ours")
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), ours.parameters()))


def _trainer(model: Any, tmp_path: Path, **kwargs: Any) -> Any:
    rows = [{"input_ids": t, "labels": t} for t in torch.randint(0, 256, (16, 32), generator=torch.Generator()
                                                                  .manual_seed(0))]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4,
                                          learning_rate=3e-3, report_to=[], save_strategy="no", logging_steps=1,
                                          use_cpu=True, seed=0, lr_scheduler_type="constant")
    return transformers.Trainer(model=model, args=args, train_dataset=rows, **kwargs)


def test_trainer_trains_the_plan_with_its_groups(tmp_path: Path) -> None:
    """transformers.Trainer with the plan's optimizer: its per-layer learning rates survive training."""
    model = _model("llama", WIDTH)
    plan = hf.parameterize(model, hf.causal_lm_config("llama", BASE))
    optimizer = torch.optim.AdamW(plan.param_groups(lr=3e-3, weight_decay=0.0))
    trainer = _trainer(model, tmp_path, optimizers=(optimizer, None))
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    assert plan.check_optimizer(trainer.optimizer, model) == pytest.approx(3e-3)


def test_trainer_own_adamw_trains_the_group_free_form(tmp_path: Path) -> None:
    """mup-constant-lr moves every width factor into init and multipliers: Trainer's own AdamW, one LR,
    trains muP. Its plan asks every parameter for the base learning rate."""
    model = _model("llama", WIDTH)
    plan = hf.parameterize(model, hf.causal_lm_config("llama", BASE), parameterization="mup-constant-lr")
    assert plan.multipliers  # the width factors sit in forward multipliers (hooks on Linear and Embedding)
    assert {plan.lr_multiplier(n, "adam") for n, _ in model.named_parameters()} == {1.0}
    result = _trainer(model, tmp_path).train()
    assert math.isfinite(result.training_loss)


@pytest.fixture(scope="module")
def text_batch() -> tuple[Tensor, Tensor]:
    data = load_dataset("stdlib-bytes", block_size=16, max_bytes=50_000)
    return data.sample(4, torch.Generator().manual_seed(0))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_coordinate_check_mup_stable_sp_logits_grow(family: str, text_batch: tuple[Tensor, Tensor]) -> None:
    """The coordinate check on transformers' models (head dimension 16, widths 128..1024, Adam): under muP
    every module keeps its size within |s| <= 0.15, as our GPT's; under SP as built the logits grow. The
    readout is untied and zero-initialized, as TP-V App. D.2 recommends (with Table 3's readout init, or
    GPT-2's tied one, the initial logits' transient still shows at these widths by step 3). Adam's LR is
    3e-3: at 1e-2 Llama's SwiGLU down-projection (a product of two updated branches) reads -0.15
    [-0.38, +0.07] at step 3 with 3 seeds, inconclusive rather than stable."""
    from scaling.models import build

    def builder(w: int) -> Any:
        return build(f"hf-{family}", w, num_hidden_layers=1, tie_word_embeddings=False)

    result = coord_check(builder, text_batch, widths=(128, 256, 512, 1024), parameterization="mup",
                         optimizer="adam", lr=3e-3, steps=3, seeds=2, zero_readout=True, init="own")
    unstable = [f for f in result.fits if f.step >= 1 and f.verdict not in ("stable", "zero")]
    assert not unstable, result.table()
    sp = coord_check(builder, text_batch, widths=(128, 256, 512, 1024), parameterization="sp",
                     optimizer="adam", lr=1e-2, steps=1, seeds=2, init="pytorch")
    assert sp.fit("<model>", 1, "mean_abs_delta").slope >= 0.5


def test_cli_coord_check_takes_a_family_and_config_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scaling.cli import main

    code = main(["coord-check", "--hf", "llama", "--hf-option", "num_hidden_layers=1", "--widths", "32", "64",
                 "--steps", "1", "--seeds", "1", "--out", str(tmp_path), "--no-plot"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "lm.model.layers.0.mlp.down_proj" in out
    assert (tmp_path / "coord-hf-llama-mup-adam.json").is_file()
    assert main(["coord-check", "--hf", "llama", "--hf-option", "no_such_option=1", "--widths", "32", "64",
                 "--out", str(tmp_path), "--no-plot"]) == 2


def test_parameterize_core_reaches_the_wrapped_model_too() -> None:
    """The registry's CausalLM wrapper goes through scaling.parameterize (init='own') like any model."""
    from scaling.models import build

    model = build("hf-llama", WIDTH)
    plan = parameterize(model, lambda: build("hf-llama", BASE), init="own")
    assert plan.widths["lm.lm_head.weight"].role == "output"
    assert plan.widths["lm.model.layers.0.mlp.gate_proj.weight"].role == "hidden"


def test_cli_sweep_takes_a_family(tmp_path: Path) -> None:
    """`scaling sweep --hf llama`: the registry's hf-llama on the byte corpus, muP relative to its own init."""
    from scaling.cli import main
    from scaling.sweep.store import open_existing

    db = tmp_path / "s.db"
    args = ["sweep", "--db", str(db), "--hf", "llama", "--hf-option", "num_hidden_layers=1", "--widths", "32", "64",
            "--base-width", "32", "--parameterizations", "mup", "--optimizers", "adam", "--log2-lrs", "-8",
            "--seeds", "0", "--steps", "2", "--last-k", "1", "--batch-size", "2", "--dataset-option", "block_size=16",
            "--quiet"]
    assert main(args) == 0
    with open_existing(db) as store:
        runs = store.runs()
    assert {r.cell.width for r in runs} == {32, 64} and all(math.isfinite(r.train_loss) for r in runs)
    assert main([*args, "--model", "mlp"]) == 2  # --model and --hf together
