"""The backbone layer: specs resolve offline-first to blocks and features."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

from sktransfer import list_models
from sktransfer.backbones import (
    OFFLINE_ENV_VARS,
    build_image_model,
    frozen_block_count,
    infer_modality,
    is_offline,
    resolve_backbone,
    resolve_image_backbone,
    spec_identity,
)
from sktransfer.exceptions import ModelNotAvailableError


@pytest.mark.slow
@pytest.mark.parametrize("photo, classes", [("chelsea", range(281, 286)),
                                            ("coffee", [967])])
def test_bundled_model_is_imagenet_pretrained(photos, photo, classes):
    net, config = build_image_model("efficientnet_lite0")
    assert config["mean"] == (0.5, 0.5, 0.5) and config["std"] == (0.5, 0.5, 0.5)
    assert config["interpolation"] == "bicubic"
    backbone = resolve_image_backbone("efficientnet_lite0")
    x = backbone.preprocess(Image.fromarray(photos[photo])).unsqueeze(0)
    assert x.shape == (1, 3, 224, 224)
    with torch.inference_mode():
        top = net.eval()(x).argmax(1).item()
    assert top in classes


@pytest.mark.parametrize(
    "name, n_blocks, first, last",
    [("resnet18", 5, "stem", "layer4"),
     ("vgg11", 5, "conv1", "conv5"),
     ("efficientnet_b0", 9, "features.0", "features.8"),
     ("mobilenet_v3_small", 13, "features.0", "features.12"),
     ("convnext_tiny", 8, "features.0", "features.7"),
     ("efficientnet_lite0", 9, "stem", "head"),
     ("timm/resnet18", 5, "stem", "layer4"),
     ("timm/vit_tiny_patch16_224", 14, "patch_embed", "norm")])
def test_blocks_are_defined_for_each_family(name, n_blocks, first, last):
    backbone = resolve_image_backbone(name, weights=None)
    names = [block.name for block in backbone.blocks]
    assert (len(names), names[0], names[-1]) == (n_blocks, first, last)
    # every parameter of the feature network belongs to exactly one block
    owned = [id(p) for block in backbone.blocks for p in block.parameters()]
    assert len(owned) == len(set(owned))
    assert set(owned) == {id(p) for p in backbone.module.parameters()}


def test_vit_embeddings_block_owns_class_token_and_positions():
    backbone = resolve_image_backbone("vit_b_16", weights=None)
    embed = backbone.blocks[0]
    assert embed.name == "embeddings"
    assert backbone.module.class_token in list(embed.params)
    assert len(backbone.blocks) == 14 and backbone.out_features == 768


def test_features_from_every_block_have_the_block_width():
    backbone = resolve_image_backbone("resnet18", weights=None)
    x = torch.randn(2, 3, 64, 64)
    widths = [backbone.extract(x, layer=i).shape for i in range(5)]
    assert widths == [(2, 64), (2, 64), (2, 128), (2, 256), (2, 512)]
    assert backbone.extract(x, layer="layer3", pooling="avgmax").shape == (2, 512)
    own = backbone.extract(x)
    torch.testing.assert_close(own, backbone.extract(x, layer=-1))


def test_weights_file_loads_into_named_architecture(tmp_path):
    reference = torchvision.models.resnet18(num_classes=10)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    backbone = resolve_image_backbone("resnet18", weights=tmp_path / "r18.pth")
    torch.testing.assert_close(backbone.module.layer4[1].conv2.weight,
                               reference.layer4[1].conv2.weight)


def test_safetensors_weights_file(tmp_path):
    from safetensors.torch import save_file

    reference = torchvision.models.resnet18()
    save_file(reference.state_dict(), str(tmp_path / "r18.safetensors"))
    backbone = resolve_image_backbone("resnet18",
                                      weights=str(tmp_path / "r18.safetensors"))
    torch.testing.assert_close(backbone.module.layer1[0].conv1.weight,
                               reference.layer1[0].conv1.weight)


def test_checkpoint_recording_its_architecture(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "ckpt.pt"
    torch.save({"arch": "resnet18", "state_dict": reference.state_dict()}, path)
    backbone = resolve_image_backbone(str(path))
    torch.testing.assert_close(backbone.module.conv1.weight, reference.conv1.weight)
    torch.save(reference.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ModelNotAvailableError, match="does not record its arch"):
        resolve_image_backbone(str(tmp_path / "bare.pt"))


def test_weights_that_do_not_fit_are_refused(tmp_path):
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ModelNotAvailableError, match="do not fit ResNet"):
        resolve_image_backbone("resnet18", weights=tmp_path / "r34.pth")


def test_module_spec_is_copied_and_its_head_removed():
    net = torchvision.models.resnet18(num_classes=3)
    backbone = resolve_image_backbone(net)
    assert backbone.out_features == 512
    assert isinstance(net.fc, torch.nn.Linear)  # the user's module is untouched
    assert backbone.module is not net


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelNotAvailableError, match=r"Close matches: \['resnet50'"):
        resolve_image_backbone("resnet5O")
    with pytest.raises(ModelNotAvailableError, match="timm/resnet18"):
        resolve_image_backbone("timm/resnet_18")


def test_missing_weights_offline_say_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelNotAvailableError) as info:
        resolve_image_backbone("resnet50")
    message = str(info.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert str(tmp_path / "checkpoints") in message
    assert "efficientnet_lite0" in message


def test_bad_weights_enum_lists_choices():
    with pytest.raises(ModelNotAvailableError, match="IMAGENET1K_V1"):
        resolve_image_backbone("resnet18", weights="IMAGENET22K")


@pytest.mark.parametrize("depth, expected", [(0, 0), (2, 2), (-1, 4), ("all", 5)])
def test_freeze_depth_counts(depth, expected):
    assert frozen_block_count(depth, 5) == expected


@pytest.mark.parametrize("depth", [6, -6, 1.5, "some"])
def test_freeze_depth_out_of_range_names_block_count(depth):
    with pytest.raises(ValueError, match="freeze_depth"):
        frozen_block_count(depth, 5, "resnet18")


def test_list_models_reports_offline_availability():
    table = list_models()
    assert {"model", "modality", "offline", "source"} <= set(table.columns)
    row = table.set_index("model").loc["efficientnet_lite0"]
    assert bool(row["offline"]) is True
    assert "resnet50" in set(table["model"])
    assert np.issubdtype(table["offline"].dtype, np.bool_)


# --- one offline policy, one spec identity, fast block counts -------------------


@pytest.mark.parametrize("name", OFFLINE_ENV_VARS)
@pytest.mark.parametrize("value, offline", [("1", True), ("TRUE", True),
                                            ("on", True), ("0", False),
                                            ("", False), ("no", False)])
def test_each_offline_variable_switches_offline_mode(monkeypatch, name, value,
                                                     offline):
    for other in OFFLINE_ENV_VARS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    assert is_offline() is offline


@pytest.mark.parametrize("name", OFFLINE_ENV_VARS)
def test_timm_and_torchvision_honour_every_offline_variable(monkeypatch, tmp_path,
                                                            name):
    for other in OFFLINE_ENV_VARS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    # resnet10t is in no cache: offline, nothing may try the network
    with pytest.raises(ModelNotAvailableError, match=rf"offline mode is set \({name}"):
        resolve_backbone("timm/resnet10t")
    with pytest.raises(ModelNotAvailableError, match=rf"offline mode is set \({name}"):
        resolve_backbone("resnet18")


def test_spec_identity_follows_file_content_and_time(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"one")
    first = spec_identity(path)
    assert spec_identity(str(path)) == first  # str and Path alike
    path.write_bytes(b"three")  # another size
    assert spec_identity(path) != first
    second = spec_identity(path)
    os.utime(path, ns=(1, 1))  # same size, another modification time
    assert spec_identity(path) != second
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = spec_identity(folder)
    (folder / "config.json").write_text('{"a": 1}')
    assert spec_identity(folder) != before
    assert spec_identity("resnet18") == repr("resnet18")
    assert spec_identity(None) == "None"


def test_spec_identity_of_a_module_follows_its_weights():
    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))

    first, twin = net(), net()
    assert spec_identity(first) == spec_identity(twin)  # equal weights
    assert spec_identity(first).startswith("module:Sequential:")
    with torch.no_grad():
        twin[0].weight[1, 2] += 1e-3  # one weight changes
    assert spec_identity(twin) != spec_identity(first)
    other = net()
    other[1].running_mean[0] = 0.5  # a buffer counts too
    assert spec_identity(other) != spec_identity(first)


def test_spec_identity_follows_module_weights():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    same = torch.nn.Linear(3, 2)
    same.load_state_dict(net.state_dict())
    assert spec_identity(net) == spec_identity(same)
    with torch.no_grad():
        same.weight[0, 0] += 1e-3
    assert spec_identity(net) != spec_identity(same)
    assert spec_identity(net.to(torch.bfloat16)).startswith("module:Linear:")


def test_modality_is_inferred_from_the_spec(tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("cat 1 0\n")
    assert [infer_modality(spec) for spec in (
        "resnet18", "timm/resnet18", "efficientnet_lite0", torch.nn.Linear(2, 2),
        "resnet5O", "all-MiniLM-L6-v2", "hf/bert-base-uncased", tmp_path,
        vectors, "sentence-transformers/all-mpnet-base-v2",
    )] == ["image"] * 5 + ["text"] * 5  # fmt: skip
    with pytest.raises(ValueError, match="modality must be one of"):
        resolve_backbone("resnet18", modality="audio")


@pytest.fixture(scope="module")
def models_with_blocks():
    return list_models(blocks=True).set_index("model")


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "mobilenet_v3_large",
                                  "convnext_tiny", "vit_b_16", "efficientnet_lite0"])
def test_fast_block_count_is_the_real_one(models_with_blocks, name):
    # the table builds on the meta device; this builds the real network
    real = resolve_backbone(name, weights=None)
    assert models_with_blocks.loc[name, "blocks"] == len(real.blocks)


def test_list_models_with_block_counts(models_with_blocks):
    table = models_with_blocks
    assert table.loc["resnet50", "blocks"] == 5
    assert table.loc["vit_b_16", "blocks"] == 14
    assert pd.isna(table.loc["timm/<name>", "blocks"])
    assert list(table.columns[:2]) == ["modality", "blocks"]


def test_shipped_catalog_equals_a_fresh_computation():
    # catalog.json is what `sktransfer models` reads instead of importing torch:
    # it must be exactly what the libraries say (regenerate it with
    # `python -m sktransfer.backbones._catalog --write` after an upgrade).
    from sktransfer.backbones._catalog import (
        CATALOG_FILE,
        _installed_versions,
        compute_catalog,
    )

    shipped = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    if shipped["versions"] != _installed_versions():
        pytest.skip(f"catalog.json records {shipped['versions']}, installed "
                    f"{_installed_versions()}: list_models recomputes it")
    assert shipped == compute_catalog()


def test_stale_catalog_falls_back_to_the_exact_computation(monkeypatch, tmp_path):
    from sktransfer.backbones import _catalog

    monkeypatch.setenv("SKTRANSFER_CACHE_DIR", str(tmp_path / "user"))
    fast = _catalog.list_model_rows(blocks=True)
    stale = _catalog.compute_catalog()
    stale["versions"]["torchvision"] = "0.0.1"
    stale["torchvision"][0]["blocks"] = 99  # would show if the file were used
    monkeypatch.setattr(_catalog, "CATALOG_FILE", tmp_path / "catalog.json")
    _catalog.CATALOG_FILE.write_text(json.dumps(stale), encoding="utf-8")
    assert _catalog.list_model_rows(blocks=True) == fast
    # the computed table is kept for the next call, which computes nothing
    stored = list((tmp_path / "user").glob("catalog-*.json"))
    assert len(stored) == 1
    assert json.loads(stored[0].read_text(encoding="utf-8")) == \
        _catalog.compute_catalog()

    def no_compute(*args, **kwargs):
        raise AssertionError("the stored catalog should have been used")

    monkeypatch.setattr(_catalog, "compute_catalog", no_compute)
    assert _catalog.list_model_rows(blocks=True) == fast
    assert _catalog.list_model_rows(blocks=False) == [
        {k: v for k, v in row.items() if k != "blocks"} for row in fast]


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                        # truncated
    lambda text: text.replace('"blocks": 5', '"blocks": "5"', 1),  # wrong type
    lambda text: "[]",                                          # wrong shape
])
def test_a_damaged_stored_catalog_is_recomputed(monkeypatch, tmp_path, damage):
    from sktransfer.backbones import _catalog

    monkeypatch.setenv("SKTRANSFER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_catalog, "CATALOG_FILE", tmp_path / "absent.json")
    expected = _catalog.list_model_rows(blocks=True)
    (stored,) = tmp_path.glob("catalog-*.json")
    stored.write_text(damage(stored.read_text(encoding="utf-8")), encoding="utf-8")
    assert _catalog.list_model_rows(blocks=True) == expected
    assert _catalog._read_catalog(stored) is not None  # written again, whole


def test_hub_checkpoints_dir_follows_torch(monkeypatch, tmp_path):
    from sktransfer.backbones._catalog import hub_checkpoints_dir

    for env in ({"TORCH_HOME": str(tmp_path / "th")},
                {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {}):
        for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        expected = Path(torch.hub.get_dir()) / "checkpoints"
        assert hub_checkpoints_dir() == expected
        monkeypatch.delitem(sys.modules, "torch.hub")  # the torch-free rule
        assert hub_checkpoints_dir() == expected
        monkeypatch.undo()
