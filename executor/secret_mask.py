"""Masking secrets in text a source wrote: the value itself, its URL-encoded and base64 forms, and any
run of 8 or more characters those forms start with (a cut-off prefix is still a leak)."""

import base64
import re
from urllib.parse import quote, quote_plus

MASK = "***"
# The shortest piece of a secret worth masking; secrets are at least this long (models/secrets.py).
MIN_MATCH = 8


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
    """Replaces every form of the given secrets, and every prefix of 8+ characters of one, with ***."""

    def __init__(self, secrets: list[str]):
        self._forms = sorted(
            {form for secret in secrets if len(secret) >= MIN_MATCH for form in secret_forms(secret)},
            key=len,
            reverse=True,
        )
        starts = sorted({form[:MIN_MATCH] for form in self._forms})
        self._start = re.compile("|".join(map(re.escape, starts))) if starts else None

    def __call__(self, text: str) -> str:
        if self._start is None:
            return text
        out, position = [], 0
        while True:
            match = self._start.search(text, position)
            if match is None:
                break
            end = max(
                (match.start() + _common_prefix(text, match.start(), form) for form in self._forms),
                default=match.end(),
            )
            out.append(text[position : match.start()] + MASK)
            position = max(end, match.end())
        out.append(text[position:])
        return "".join(out)


def _common_prefix(text: str, start: int, form: str) -> int:
    length = 0
    for a, b in zip(text[start : start + len(form)], form, strict=False):
        if a != b:
            break
        length += 1
    return length if length >= MIN_MATCH else 0
