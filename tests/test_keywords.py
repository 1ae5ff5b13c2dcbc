"""Tests of model.keywords: spam's words spelt with digits, symbols, accents or other alphabets."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from model.keywords import SPAM_WORDS, read_keywords
from model.normalize import normalize

DATA = Path(__file__).resolve().parent / "data" / "keyword_disguises.json"


@pytest.mark.parametrize("disguised, plain", [
    ("Buy v1agra and c1al1s today", "Buy viagra and cialis today"),   # 1 for i
    ("best ca$ino", "best casino"),                                    # $ for s
    ("cr7pto signals", "crypto signals"),                              # 7 for y
    ("fr33 b0nus", "free bonus"),                                      # 3 for e, 0 for o
    ("p0rn", "porn"),
    ("fast l0ans", "fast loans"),                                      # a plural of a listed word
    ("@dult dating", "adult dating"),                                  # @ for a, first in the word
    ("make mon€y", "make money"),                                      # the euro sign for e
    ("V!agra and c|alis", "Viagra and cialis"),                        # ! and | between letters
    ("FR33 SP1NS", "FREE SPINS"),                                      # capitals stay capitals
    ("c@sino!", "casino!"),                                            # "!" after a word is punctuation
    ("ca$h$$$ now", "cash$$$ now"),                                    # so are symbols after it
])
def test_leetspeak_spells_the_spam_word(disguised: str, plain: str) -> None:
    norm = normalize(disguised)
    assert norm.text == plain
    assert norm.disguised_letters is True


@pytest.mark.parametrize("disguised, plain", [
    ("vïágra", "viagra"),
    ("cásïno bönús", "casino bonus"),
    ("ɑdսlt dating", "adult dating"),              # IPA alpha, Armenian u
    ("ᏟᎪᏚᎥΝΟ", "CASINO"),                          # Cherokee and Greek capitals
    ("с@sino", "casino"),                          # a Cyrillic с in a word with a symbol
    ("vιαgrα", "viagra"),                          # Greek α, which science writes in Latin words
])
def test_accents_and_other_alphabets_spell_the_spam_word(disguised: str, plain: str) -> None:
    norm = normalize(disguised)
    assert norm.text == plain
    assert norm.disguised_letters is True


@pytest.mark.parametrize("word", [
    "ĺoans", "frée", "bônus",  # one accent: how some language writes a word
    "loạn", "sẹo", "rích",     # Vietnamese chaos, scar, and a word of "rich" (rôm rả)
    "lögin", "träder", "tråder", "horný", "nudę", "nudě",  # Icelandic, Swedish, Norwegian, Slovak, Polish, Czech
    "příze",                   # Czech yarn: a caron and an acute, a language's own letters
    "VİSİT", "BİTCOİN",        # Turkish capitals: İ is a capital I, no accent
])
def test_the_accents_of_languages_are_not_read(word: str) -> None:
    # A first version read one accent as the word (Vietnamese "loạn" became "loan" and held
    # ordinary comments for "word 'loan'"), and Turkish İ and Czech ř as disguising accents.
    assert read_keywords(word) == (word, False)
    assert normalize(word).disguised_letters is False


@pytest.mark.parametrize("text", [
    "catch (Exception $ex) { echo $ex->getMessage(); }",
    "foreach ($lots as $lot) { $pins[] = $lot; }",
    "Bought more $PINS after earnings; $EOS dipped.",
])
def test_a_dollar_in_front_is_a_variables_or_a_cashtags_sign(text: str) -> None:
    # "$ex" was read as "sex", "$lots" as "slots", "$PINS" as "SPINS".
    assert read_keywords(text) == (text, False)


# Legitimate writing the reading must leave exactly as written.
UNTOUCHED = [
    "h2o a1 x2 mp3 4k b2b i18n l10n covid19 g00gle 3d 1st 2nd 3rd 10am 5pm 24h 100mg 1080p",
    "ipv4 ipv6 utf8 base64 sha256 md5 x86 arm64 win32 py3 es6 h264 s3 ec2 k8s w3c web3 p2p",
    "In PHP use $var and $this->name; in bash echo $PATH and $HOME",
    "Annotate with @param and @Override, then ping @alice and @bob_99",
    "Prices: $5, €10, £20, 5$, $1.99, €2,50, 100k$, $5k",
    "Upgrade to v2.3.1 or 1.0.0-rc1, the py3 build on arm64 works",
    "n00b_slayer99, l33t_h4x0r, xX_g4mer_Xx, Tr0ub4dor, R2D2, C3PO",
    "gr8, l8r, b4, 2nite, m8, sk8, 4ever, any1, some1, str8",
    "A1 and A4 sheets, the B2 exam, the M2 chip, RTX 4090, Wi-Fi 6E, 5G, e10 fuel, 4x4",
    "Le crédit d'impôt, très bien expliqué, merci ! Ça marche à l'été.",
    "Pedí un préstamo al banco; el interés fue más bajo. ¿Cómo estás?",
    "O curso é grátis mesmo? Ótima explicação, parabéns.",
    "Grüße aus München, das Rezept für Kuchen ist schön.",
    "Cảm ơn bạn rất nhiều, bài viết rất hữu ích.",
    "Çok güzel bir yazı olmuş, elinize sağlık. İyi çalışmalar, kadın, ılık.",
    "Сам он в Москве, она сама тоже, нет.",
    "Καλημέρα, πολύ καλό άρθρο, TNFα and hν",
    "Բարեւ, շատ լավ հոդված է",
    "Naïve question about the café, déjà vu, Zoë, Noël, façade",
]


@pytest.mark.parametrize("text", UNTOUCHED)
def test_legitimate_writing_is_left_as_written(text: str) -> None:
    assert read_keywords(text) == (text, False)


def test_the_probe_sets_ham_is_left_as_written() -> None:
    ham = json.loads(DATA.read_text(encoding="utf-8"))["ham"]
    assert len(ham) >= 30
    assert [t for t in ham if read_keywords(t) != (t, False)] == []


def test_links_and_addresses_keep_their_spelling() -> None:
    # The reading runs after links and addresses became placeholders: a host is no word.
    norm = normalize("see http://v1agra-shop.example/c1alis or write to c@sino.example")
    assert [link.host for link in norm.links] == ["v1agra-shop.example"]
    assert "viagra" not in norm.text and "cialis" not in norm.text


def test_spam_words_are_evidence_of_spam_in_the_seed_corpus() -> None:
    """No listed word is used by seed ham in more comments than a third of seed spam's, or than one:
    reading a stand-in into it must add evidence of spam, never blur ham into something else."""
    spam: Counter[str] = Counter()
    ham: Counter[str] = Counter()
    seed = Path(__file__).resolve().parents[1] / "training" / "seed"
    for path in seed.glob("*.jsonl"):
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            words = {w.lower() for w in re.findall(r"[A-Za-z]+", normalize(row["comment_content"]).text)}
            (spam if row["label"] == "spam" else ham).update(words)
    too_common = {w: (spam[w], ham[w]) for w in SPAM_WORDS if ham[w] > max(1, spam[w] / 3)}
    assert too_common == {}
    assert all(len(w) >= 3 and w.isascii() and w.isalpha() and w.islower() for w in SPAM_WORDS)


def test_a_token_longer_than_any_listed_word_is_not_read() -> None:
    assert read_keywords("a" * 40 + "v1agra") == ("a" * 40 + "v1agra", False)
    assert read_keywords("x v1agra " + "a1" * 5000)[0].startswith("x viagra ")
