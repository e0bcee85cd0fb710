"""Video-pretrained UniFormerV2 weights: the catalogue entry ``uniformerv2-b16-k710`` pulled from the
loopback fake Hub, converted (8-frame patch embedding inflated, global blocks re-indexed, wrapper key and
``backbone.`` prefix removed, the K400 head dropped), used by ``--init`` at size tiny, and a raw
checkpoint file refused, keys named, where it cannot be mapped.

The served file is a small checkpoint in the real file's layout: slowfast's ``{"model_state": ...}``
wrapper, ``backbone.`` prefixed reference key names (checked against the B/16 key listing of
../shared/fixtures when present), no local MHRA, patch embedding of temporal kernel 1 (8 frames, no
temporal downsampling), fewer global blocks than mer's model, and the classification head.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import torch
from fakehub import FakeHub, FakeRepo
from typer.testing import CliRunner

from mer.merclip.convert import ConversionError
from mer.registrations import load_all
from mer.zoo import hub as zoo_hub
from mer.zoo.api import MODELS
from mer.zoo.artifact import IntegrityError
from mer.zoo.hub import NotCachedError, pull
from mer.zoo.init import resolve_init

REPO_ID = "Andy1621/uniformerv2"
FILE = "k400+k710_uniformerv2_b16_8x224.pyth"
WIDTH, LAYERS, PATCH, GRID = 64, 4, 8, 6  # mer's tiny encoder: 48² input, patch 8


def reference_state(n_dec: int = 1, kt: int = 1, head: int = 5, grid: int = GRID) -> dict[str, torch.Tensor]:
    """Reference UniFormerV2 tensors (slowfast names) of a release without local MHRA, at tiny width."""
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.05

    c = WIDTH
    s = {
        "class_embedding": r(c),
        "positional_embedding": r(grid * grid + 1, c),
        "conv1.weight": r(c, 3, kt, PATCH, PATCH),
        "ln_pre.weight": 1 + r(c),
        "ln_pre.bias": r(c),
        "transformer.temporal_cls_token": r(1, 1, c),
        "transformer.balance": r(c),
        "transformer.norm.weight": 1 + r(c),
        "transformer.norm.bias": r(c),
    }
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        s |= {
            p + "attn.in_proj_weight": r(3 * c, c),
            p + "attn.in_proj_bias": r(3 * c),
            p + "attn.out_proj.weight": r(c, c),
            p + "attn.out_proj.bias": r(c),
            p + "ln_1.weight": 1 + r(c),
            p + "ln_1.bias": r(c),
            p + "mlp.c_fc.weight": r(4 * c, c),
            p + "mlp.c_fc.bias": r(4 * c),
            p + "mlp.c_proj.weight": r(c, 4 * c),
            p + "mlp.c_proj.bias": r(c),
            p + "ln_2.weight": 1 + r(c),
            p + "ln_2.bias": r(c),
        }
    for j in range(n_dec):
        p = f"transformer.dec.{j}."
        s |= {f"transformer.dpe.{j}.weight": r(c, 1, 3, 3, 3), f"transformer.dpe.{j}.bias": r(c)}
        s |= {
            p + "attn.in_proj_weight": r(3 * c, c),
            p + "attn.in_proj_bias": r(3 * c),
            p + "attn.out_proj.weight": r(c, c),
            p + "attn.out_proj.bias": r(c),
            **{
                p + f"ln_{k}.{w}": (1 + r(c)) if w == "weight" else r(c)
                for k in (1, 2, 3)
                for w in ("weight", "bias")
            },
            p + "mlp.c_fc.weight": r(4 * c, c),
            p + "mlp.c_fc.bias": r(4 * c),
            p + "mlp.c_proj.weight": r(c, 4 * c),
            p + "mlp.c_proj.bias": r(c),
        }
    s |= {"transformer.proj.1.weight": r(head, c), "transformer.proj.1.bias": r(head)}  # K400 head
    return s


def save_slowfast(state: dict[str, torch.Tensor], path: Path) -> bytes:
    """Save as slowfast does: ``{"epoch", "model_state", "optimizer_state", "cfg"}``, ``backbone.`` keys."""
    torch.save(
        {
            "epoch": 30,
            "model_state": {f"backbone.{k}": v for k, v in state.items()},
            "optimizer_state": {},
            "cfg": "UNIFORMERV2:\n  NO_LMHRA: True\n  TEMPORAL_DOWNSAMPLE: False\n",
        },
        path,
    )
    return path.read_bytes()


def test_reference_key_names_are_the_real_ones(shared_fixtures):
    """Every backbone key of the test checkpoint is a key of the real B/16 listing (indices aside)."""
    listing = json.loads(
        (shared_fixtures / "uniformerv2/uniformerv2_b16_t16_state_dict_shapes.json").read_text()
    )

    def pattern(key: str) -> str:
        return re.sub(r"\.\d+\.", ".N.", key)

    real = {pattern(k) for k in listing}
    ours = {pattern(k) for k in reference_state() if not k.startswith("transformer.proj.")}
    assert ours <= real, ours - real
    assert tuple(listing["conv1.weight"])[2] == 3  # mer's B/16 patch embedding has a temporal kernel of 3


@pytest.fixture
def online(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    return tmp_path


def _catalogue_for(tmp_path: Path, monkeypatch, data: bytes) -> dict:
    """The real catalogue, with the entry's size (and model size) set to the small served file's."""
    catalogue = json.loads(zoo_hub.CATALOGUE_FILE.read_text())
    entry = next(e for e in catalogue["models"] if e["name"] == "uniformerv2-b16-k710")
    assert (entry["repo_id"], entry["filename"], entry["bytes"]) == (REPO_ID, FILE, 458_289_355)
    assert (entry["kind"], entry["size"], entry["converter"]) == ("checkpoint", "base", "uniformerv2")
    entry.update(bytes=len(data), size="tiny")
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(catalogue))
    monkeypatch.setattr(zoo_hub, "CATALOGUE_FILE", path)
    return entry


def test_k710_pull_convert_init_forward_through_the_loopback_hub(online, monkeypatch):
    from mer.cli import app

    load_all()
    state = reference_state()
    data = save_slowfast(state, online / "served.pyth")
    _catalogue_for(online, monkeypatch, data)
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        hub.repos[REPO_ID] = FakeRepo(
            commits={"c0ffee" * 6 + "abcd": {FILE: data}}, refs={"main": "c0ffee" * 6 + "abcd"}
        )
        result = CliRunner().invoke(app, ["zoo", "pull", "uniformerv2-b16-k710"])
        assert result.exit_code == 0, result.output
        # the converter says what it found and how it fitted the 8-frame layout
        out = " ".join(result.output.split())
        assert "wrapper key 'model_state'" in out and "prefix 'backbone.'" in out
        assert "temporal kernel 1 → 3" in out and "centre tap" in out
        assert "global blocks: the checkpoint's 1 become the model's block 1" in out
        assert "transformer.proj.1.weight" in out  # the K400 head, named as not used
        assert "local MHRA: not in the checkpoint" in out
        assert hashlib.sha256(data).hexdigest() in out

        # a file served cut short is refused at pull, with the command that refetches it
        hub.serve_instead(REPO_ID, FILE, data[: len(data) // 2])
        with pytest.raises(IntegrityError, match=r"bytes, but .* is \d+ bytes.*--force-download"):
            pull("uniformerv2-b16-k710", force_download=True)
        hub.serve_instead(REPO_ID, FILE, data)
        pulled = pull("uniformerv2-b16-k710", force_download=True)
        assert pulled.path.read_bytes() == data and pulled.sha256 == hashlib.sha256(data).hexdigest()

    # the Hub is gone: --init reads the cache only
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    init = resolve_init("uniformerv2-b16-k710", "merclip")
    assert Path(init).read_bytes() == data

    # what `mer bench run --init uniformerv2-b16-k710` will do, as --dry-run (and run.json) record it
    args = ["bench", "run", "--model", "merclip", "--protocol", "loso-synth-3", "--size", "tiny"]
    result = CliRunner().invoke(app, [*args, "--init", "uniformerv2-b16-k710", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    init_record = json.loads(result.output)["init"]
    assert init_record["sha256"] == hashlib.sha256(data).hexdigest() and init_record["path"] == init
    source = init_record["checkpoint"]
    assert (source["catalogue"], source["repo_id"]) == ("uniformerv2-b16-k710", REPO_ID)
    assert any("temporal kernel 1 → 3" in n for n in source["conversion"]["notes"])

    est = MODELS.get("merclip").build(num_classes=3, size="tiny", seed=0, init=init)
    enc = est.model.visual.encoder
    # converted as the notes say: centre tap of the inflated kernel, the one global block onto the last
    assert torch.equal(enc.patch_embed.weight[:, :, 1], state["conv1.weight"][:, :, 0])
    assert not enc.patch_embed.weight[:, :, [0, 2]].any()
    assert torch.equal(enc.global_blocks[1].attn.qkv.weight, state["transformer.dec.0.attn.in_proj_weight"])
    assert torch.equal(enc.dpe[1].weight, state["transformer.dpe.0.weight"])
    assert torch.equal(enc.blocks[3].mlp.fc2.weight, state["transformer.resblocks.3.mlp.c_proj.weight"])
    assert torch.equal(enc.pos_embed, state["positional_embedding"])

    # forward: the tiny model sees frames 0, 2, 4, 6 as the 8-frame model saw its frames, so the odd
    # frames do not change its output, the even ones do
    net = est.model.eval()
    video = torch.randn(2, 3, 8, 48, 48, generator=torch.Generator().manual_seed(1))
    odd = video.clone()
    odd[:, :, 1::2] = torch.randn(2, 3, 4, 48, 48, generator=torch.Generator().manual_seed(2))
    even = video.clone()
    even[:, :, 4] += 1.0
    with torch.no_grad():
        ref, same, other = (net(v)["logits"] for v in (video, odd, even))
    assert ref.shape == (2, 3) and torch.isfinite(ref).all()
    torch.testing.assert_close(same, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(other, ref, atol=1e-4)


def test_uncached_entry_names_the_pull_command(online, monkeypatch):
    load_all()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(NotCachedError, match=r"mer zoo pull uniformerv2-b16-k710"):
        resolve_init("uniformerv2-b16-k710", "merclip")


def test_raw_checkpoint_init_and_what_it_refuses(tmp_path):
    """A raw .pth / .pyth the user holds: accepted after conversion; keys it cannot map are named."""
    load_all()
    build = MODELS.get("merclip").build
    plain = tmp_path / "mmaction.pth"  # mmaction2 style: {"state_dict": {"backbone.*"}}
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in reference_state(n_dec=2).items()}}, plain)
    est = build(num_classes=3, size="tiny", seed=0, init=resolve_init(str(plain), "merclip"))
    ref = reference_state(n_dec=2)
    enc = est.model.visual.encoder
    assert torch.equal(enc.global_blocks[0].norm_kv.weight, ref["transformer.dec.0.ln_3.weight"])  # no shift

    odd = reference_state() | {"transformer.extra_token": torch.zeros(4)}
    save_slowfast(odd, tmp_path / "odd.pyth")
    with pytest.raises(ConversionError, match=r"no place in mer's model: transformer\.extra_token"):
        build(num_classes=3, size="tiny", seed=0, init=str(tmp_path / "odd.pyth"))

    save_slowfast(reference_state(n_dec=3), tmp_path / "three.pyth")
    with pytest.raises(
        ConversionError, match=r"3 global blocks, the model 2: no place for .*global_blocks\.2"
    ):
        build(num_classes=3, size="tiny", seed=0, init=str(tmp_path / "three.pyth"))

    save_slowfast(reference_state(grid=14), tmp_path / "b224.pyth")  # 224² positions at tiny's 48²
    with pytest.raises(ConversionError, match=r"pos_embed: \(197, 64\) vs \(37, 64\)"):
        build(num_classes=3, size="tiny", seed=0, init=str(tmp_path / "b224.pyth"))


def test_k710_b16_layout_maps_onto_the_base_encoder(shared_fixtures):
    """The real file's layout at full size (from the B/16 key listing: no local MHRA, 4 global blocks,
    patch embedding of temporal kernel 1, a 400-class head) converts to size base with no shape left
    over: only the local MHRA, the first 4 global blocks and MER-CLIP's projectors keep their
    initialisation."""
    from mer.zoo.convert import convert_uniformerv2_state

    listing = json.loads(
        (shared_fixtures / "uniformerv2/uniformerv2_b16_t16_state_dict_shapes.json").read_text()
    )
    k710 = {}
    for key, shape in listing.items():
        m = re.match(r"transformer\.(dec|dpe)\.(\d+)\.(.+)", key)
        if ".lmhra" in key or (m and int(m.group(2)) >= 4):
            continue
        if key == "conv1.weight":
            shape = [shape[0], shape[1], 1, *shape[3:]]
        k710[f"backbone.{key}"] = torch.empty(shape, device="meta")
    k710 |= {"backbone.transformer.proj.1.weight": torch.empty(400, 768, device="meta")}
    k710 |= {"backbone.transformer.proj.1.bias": torch.empty(400, device="meta")}
    # the assumed layout is the real file's: its float32 tensors fill the catalogue's 458,289,355 bytes
    # but for ~80 kB of pickle framing (with local MHRA, 8 blocks or kernel 3 they would not fit)
    tensor_bytes = sum(4 * t.numel() for t in k710.values())
    assert 0 < 458_289_355 - tensor_bytes < 100_000
    report = convert_uniformerv2_state(k710, "base")
    assert report.mismatched == [] and report.unused == []
    assert report.dropped == ["transformer.proj.1.weight", "transformer.proj.1.bias"]
    assert tuple(report.converted["visual.encoder.patch_embed.weight"].shape) == (768, 3, 3, 16, 16)
    assert "visual.encoder.global_blocks.7.attn.qkv.weight" in report.converted  # dec.3 → block 7

    def group(key: str) -> str:  # what a key that keeps its initialisation belongs to
        parts = key.split(".")
        return "lmhra" if ".lmhra" in key else parts[2] if parts[1] == "encoder" else parts[1]

    # the local MHRA, the first global blocks, and MER-CLIP's own projectors (new in every case)
    assert {group(k) for k in report.missing} == {"lmhra", "global_blocks", "dpe", "projector", "token_proj"}
    assert {int(k.split(".")[3]) for k in report.missing if ".global_blocks." in k} == {0, 1, 2, 3}
    assert any("the checkpoint's 4 become the model's blocks 4–7" in n for n in report.notes)
