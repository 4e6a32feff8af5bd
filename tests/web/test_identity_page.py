"""Every reason the signature check can give is said on the identity page in kk, ru and en."""

from __future__ import annotations

import re
from pathlib import Path

from qala.web.i18n import load_translations
from qala.web.pages.budgeting import VERIFY_TEXTS

ACCOUNTS = Path(__file__).resolve().parents[2] / "src" / "qala" / "components" / "accounts"


def test_every_refusal_reason_is_on_the_page_and_in_every_catalogue() -> None:
    source = "".join(
        (ACCOUNTS / name).read_text(encoding="utf-8") for name in ("signature.py", "identity.py")
    )
    reasons = {f"identity.refused.{r}" for r in re.findall(r'refused\(\s*"(\w+)"', source)}
    reasons |= set(re.findall(r'msg\("(identity\.refused\.\w+)"\)', source))
    assert len(reasons) >= 14
    assert reasons <= set(VERIFY_TEXTS)
    table = load_translations()
    for language in ("kk", "ru", "en"):
        missing = sorted(key for key in VERIFY_TEXTS if key not in table[language])
        assert not missing, f"{language} lacks {missing}"


def test_what_the_page_says_in_kazakh_and_russian_has_no_english_word() -> None:
    from tests.web.crawl import latin_words
    from tests.web.test_every_word import ALLOWED

    table = load_translations()
    keys = [k for k in table["en"] if k.startswith(("verify.", "identity.refused."))]
    keys += ["pb.signature_needed", "pb.signature_start"]
    for language in ("kk", "ru"):
        for key in keys:
            words = latin_words(str(table[language][key])) - ALLOWED
            assert not words, (language, key, sorted(words))
