"""Masking secrets in text a source wrote: the value itself, its URL-encoded, hex and base64 forms, and
any run of 8 or more characters of one of those (a cut-off prefix, or the secret less its first letter, is
still a leak)."""

import base64
from urllib.parse import quote, quote_plus

MASK = "***"
# The shortest piece of a secret worth masking; secrets are at least this long (models/secrets.py).
MIN_MATCH = 8
BLOCK = MIN_MATCH // 2


def _base64_forms(secret: bytes) -> list[str]:
    """base64 of the secret at each of the three alignments it can have inside a longer encoded text
    (user:password in Basic auth, say), without the characters its neighbours decide."""
    forms = []
    for shift, skip in ((0, 0), (1, 2), (2, 3)):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + secret).decode().rstrip("=")
            forms.append(text[skip:])
    return forms


def secret_forms(secret: str) -> list[str]:
    """Every form of `secret` a log must not show."""
    raw = secret.encode()
    forms = [secret, quote(secret, safe=""), quote_plus(secret), *_base64_forms(raw), raw.hex()]
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_MATCH]


class SecretMask:
    """Replaces every run of text made of 8-character pieces of a secret's forms with ***."""

    def __init__(self, secrets: list[str]):
        forms = {form for secret in secrets if len(secret) >= MIN_MATCH for form in secret_forms(secret)}
        self._pieces = {form[i : i + MIN_MATCH] for form in forms for i in range(len(form) - MIN_MATCH + 1)}
        # Every 8-character window covers a whole 4-character block starting at a multiple of 4, so looking
        # up those blocks alone finds every line that may hold a piece, at a quarter of the lookups.
        self._blocks = {piece[i : i + BLOCK] for piece in self._pieces for i in range(MIN_MATCH - BLOCK + 1)}

    def _suspect_blocks(self, text: str) -> list[int]:
        return [
            start
            for start in range(0, len(text) - BLOCK + 1, BLOCK)
            if text[start : start + BLOCK] in self._blocks
        ]

    def __call__(self, text: str) -> str:
        if not self._pieces or len(text) < MIN_MATCH:
            return text
        secret = bytearray(len(text))
        for block in self._suspect_blocks(text):
            for start in range(max(0, block - BLOCK), min(block, len(text) - MIN_MATCH) + 1):
                if text[start : start + MIN_MATCH] in self._pieces:
                    secret[start : start + MIN_MATCH] = b"\x01" * MIN_MATCH
        if not any(secret):
            return text
        out, position = [], 0
        while position < len(text):
            if secret[position]:
                out.append(MASK)
                while position < len(text) and secret[position]:
                    position += 1
            else:
                out.append(text[position])
                position += 1
        return "".join(out)
