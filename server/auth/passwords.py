"""Password hashing with Argon2id (argon2-cffi); cost from KABAR_ARGON2_* settings."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_LENGTH = 8


def _hasher() -> PasswordHasher:
    settings = current_app.config["KABAR"]
    return PasswordHasher(
        time_cost=settings["ARGON2_TIME_COST"], memory_cost=settings["ARGON2_MEMORY_COST"]
    )


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


# Verified against when the username does not exist, so a miss costs as much as a hit
# and response times do not reveal which usernames exist.
_DUMMY: dict[tuple[int, int], str] = {}


def burn_time(password: str) -> None:
    settings = current_app.config["KABAR"]
    key = (settings["ARGON2_TIME_COST"], settings["ARGON2_MEMORY_COST"])
    if key not in _DUMMY:
        _DUMMY[key] = hash_password("not-a-real-password")
    verify_password(_DUMMY[key], password)
