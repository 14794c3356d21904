"""Model-file hashes: correct, persistent across processes, and invalidated by any change."""

import hashlib

from genzoo_assets.core import provenance


def test_hash_persists_and_follows_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_HASH_CACHE", str(tmp_path / "cache.json"))
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "w.bin").write_bytes(b"weights")
    first = provenance.file_sha256(model)
    expected = hashlib.sha256(b"sub/w.bin" + b"weights").hexdigest()
    assert first == expected
    assert (tmp_path / "cache.json").exists()
    provenance._sha256.cache_clear()  # a new process: the answer comes from the cache file
    assert provenance.file_sha256(model) == first
    (model / "sub" / "w.bin").write_bytes(b"other weights")
    assert (
        provenance.file_sha256(model) == hashlib.sha256(b"sub/w.bin" + b"other weights").hexdigest()
    )
    single = tmp_path / "f.npz"
    single.write_bytes(b"abc")
    assert provenance.file_sha256(single) == hashlib.sha256(b"abc").hexdigest()
