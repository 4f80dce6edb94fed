import pytest

from smo_impact.models.encoders import TINY_SHAPE, check_encoder_name, fingerprint, minilm_path


def test_minilm_ships_offline_in_site_packages():
    path = minilm_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_encoder_names_and_paths(tmp_path):
    assert check_encoder_name("minilm") == "minilm"
    assert check_encoder_name("org/some-model") == "org/some-model"  # a hub name, checked when loaded
    (tmp_path / "config.json").write_text("{}")
    assert check_encoder_name(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ValueError, match=r"unknown encoder 'MiniLM'; use 'minilm' \(offline default\)"):
        check_encoder_name("MiniLM")


def test_fingerprint_identifies_weights_not_names(tmp_path):
    assert fingerprint("tiny", 0) == {"encoder": "tiny", "shape": TINY_SHAPE, "init_seed": 0}
    assert fingerprint("tiny", 0) != fingerprint("tiny", 1)
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    before = fingerprint(str(tmp_path), 0)
    (tmp_path / "config.json").write_text('{"hidden_size": 16}')
    assert fingerprint(str(tmp_path), 0) != before


def test_hub_names_are_keyed_by_the_cached_commit(tmp_path, monkeypatch):
    """An HF cache laid out as the hub client writes it; moving ``refs/main`` to a new commit
    (an upstream update) must change the key. Offline and not cached: 'unresolved'."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    repo = tmp_path / "models--org--encoder"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    old = fingerprint("org/encoder", 0)
    (repo / "refs" / "main").write_text("b" * 40)
    assert old == {"encoder": "org/encoder", "revision": "a" * 40}
    assert fingerprint("org/encoder", 0) == {"encoder": "org/encoder", "revision": "b" * 40}
    assert fingerprint("org/not-cached", 0) == {"encoder": "org/not-cached", "revision": "unresolved"}
