"""API user passwords are stored as salted scrypt hashes."""

from arbotd import hash_password, verify_password


def test_a_hash_verifies_its_password_only() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)


def test_the_same_password_hashes_differently() -> None:
    assert hash_password("s3cret-pass") != hash_password("s3cret-pass")


def test_a_malformed_hash_never_matches() -> None:
    assert not verify_password("x", "")
    assert not verify_password("x", "bcrypt$1$2$3$4$5")
    assert not verify_password("x", "scrypt$n$r$p$salt$key")
