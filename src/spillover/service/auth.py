"""The service's bearer tokens: how they are written, checked and what they act for.

A token has a name (the logs record it, never the token) and the platforms it may check
for (docs/service.md, Authentication).
"""

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpilloverError

__all__ = [
    "TOKENS_ENV",
    "TokenGrant",
    "acts_for",
    "authenticate",
    "load_tokens",
    "read_tokens",
]

#: the environment variable holding the bearer tokens (``name:token,name:token``)
TOKENS_ENV = "SPILLOVER_TOKENS"


@dataclass(frozen=True)
class TokenGrant:
    """A bearer token and the platforms it may check for."""

    token: str
    platforms: frozenset[str]


def load_tokens(env_value: str | None = None, file: str | Path | None = None) -> dict[str, str]:
    """Bearer tokens by name (see :func:`read_tokens`, which also gives their platforms).

    >>> load_tokens("qc:s3cret-token-one, yd:s3cret-token-two")
    {'qc': 's3cret-token-one', 'yd': 's3cret-token-two'}
    """
    return {name: grant.token for name, grant in read_tokens(env_value, file).items()}


def read_tokens(
    env_value: str | None = None, file: str | Path | None = None
) -> dict[str, TokenGrant]:
    """Bearer tokens by name, from ``name:token`` pairs: in ``env_value`` separated by
    commas or newlines, in ``file`` one a line (``#`` starts a comment). A token acts for
    the platform of its name; ``name@platform+platform:token`` names the platforms it
    acts for instead (a broker's token). Two tokens of one name, one token under two
    names, and a token shorter than 16 characters or with a character other than
    printable ASCII (which no request could present) are refused.

    >>> grants = read_tokens("quickcash:s3cret-token-one, broker@quickcash+yidai:s3cret-token-two")
    >>> sorted(grants["quickcash"].platforms), sorted(grants["broker"].platforms)
    (['quickcash'], ['quickcash', 'yidai'])
    """
    tokens: dict[str, TokenGrant] = {}
    named: dict[str, str] = {}  # the name of each token (its secret) read so far
    for where, pair in _pairs(env_value, file):
        pair = pair.strip()
        if not pair:
            continue
        name, grant = _grant(where, pair)
        if name in tokens:
            raise SpilloverError(f"{where}: two tokens named {name!r}")
        if grant.token in named:
            # a request could not say which of them it is (nor for which platforms)
            raise SpilloverError(
                f"{where}: the tokens named {named[grant.token]!r} and {name!r} are the "
                "same token; give each name a token of its own"
            )
        tokens[name] = grant
        named[grant.token] = name
    return tokens


def _pairs(env_value: str | None, file: str | Path | None) -> list[tuple[str, str]]:
    """The ``name:token`` pairs as written, each with where it was written."""
    pairs: list[tuple[str, str]] = []
    if env_value:
        pairs += [(TOKENS_ENV, p) for p in env_value.replace("\n", ",").split(",")]
    if file is not None:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpilloverError(f"{path}: cannot read tokens: {exc.strerror}") from None
        pairs += [(str(path), line.split("#", 1)[0]) for line in text.splitlines()]
    return pairs


def _grant(where: str, pair: str) -> tuple[str, TokenGrant]:
    """The name and the grant of one ``name[@platform+platform]:token`` pair."""
    named, sep, token = pair.partition(":")
    named, token = named.strip(), token.strip()
    name, at, listed = named.partition("@")
    name = name.strip()
    platforms = frozenset(p.strip() for p in listed.split("+")) if at else frozenset([name])
    if not sep or not name or not token:
        raise SpilloverError(f"{where}: a token is written name:token")
    if "" in platforms:
        raise SpilloverError(
            f"{where}: the platforms of the token named {name!r} are written "
            "name@platform+platform:token"
        )
    if len(token) < 16:
        raise SpilloverError(f"{where}: the token named {name!r} is shorter than 16 characters")
    if not (token.isascii() and token.isprintable()):
        # an HTTP header is read as Latin-1 bytes: such a token could never be presented
        raise SpilloverError(
            f"{where}: the token named {name!r} holds a character other than printable "
            "ASCII (letters, digits, punctuation): no request could present it"
        )
    return name, TokenGrant(token, platforms)


def authenticate(grants: Mapping[str, TokenGrant], header: str | None) -> str | None:
    """The name of the token an ``Authorization: Bearer`` header presents (None: no
    such token). Every token is compared, in constant time, whichever matches.

    >>> grants = read_tokens("qc:s3cret-token-one")
    >>> authenticate(grants, "Bearer s3cret-token-one"), authenticate(grants, "Bearer nope")
    ('qc', None)
    """
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return None
    found = None
    for name, grant in grants.items():
        if hmac.compare_digest(given.strip().encode(), grant.token.encode()):
            found = name
    return found


def acts_for(grants: Mapping[str, TokenGrant], token_name: str, platform_id: str) -> bool:
    """Whether the token named ``token_name`` may check for ``platform_id`` (a token
    not in ``grants`` acts for the platform of its own name)."""
    grant = grants.get(token_name)
    platforms = grant.platforms if grant is not None else frozenset([token_name])
    return platform_id in platforms
