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
