"""Behaviour tests of the default model, trained once per session on the seed corpus.

These test what the model does, not how: obvious spam of several kinds is
flagged, ordinary comments pass, links never make a comment look more
legitimate, and the reasons are words a moderator reads.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.artifact import load_model
from model.comment import Comment
from model.pipeline import feature_names
from model.scorer import Scorer
from model.reasons import describe_meta, describe_ngram, top_reasons
from model.verdict import DISCARD, HAM, SPAM, UNSURE, Thresholds, Verdict
from tests.eval_data import TOPIC_EVAL_SET, WORLD_EVAL_SET, as_comment, eval_rows
from training.train import train_model


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scorer, dict]:
    out = tmp_path_factory.mktemp("default-model")
    result = train_model(out)
    return load_model(out), result.metadata


@pytest.fixture(scope="session")
def scorer(trained) -> Scorer:
    """The seed-corpus model (overrides conftest's tiny-model ``scorer`` in this module only)."""
    return trained[0]


def score(scorer: Scorer, text: str, **fields: str) -> float:
    return scorer.score(Comment(comment_content=text, **fields)).score


SPAM_EXAMPLES = {
    "pharma with a shortened link":
        "Best prices on viagra and cialis without prescription, order today at http://bit.ly/3xPills",
    "casino bonus":
        "Online casino bonus: claim 200 free spins with promo code WIN200 at lucky-spins-casino.xyz",
    "sub for sub plea": "Check out my channel, sub for sub! I always sub back",
    "fake support number":
        "Need help with your printer? Call our 24/7 support number +1 (888) 555-0142 now",
}

HAM_EXAMPLES = {
    "question": "Is there a way to run this on a Raspberry Pi 4?",
    "thanks": "Thanks, the second step was exactly what I was missing.",
    "baking question": "What temperature did you bake the bread at, and for how long?",
    "french": "Merci pour cet article, est-ce que la méthode marche aussi avec Python 3.12 ?",
    "docs link": "The official docs cover this too: https://docs.python.org/3/library/asyncio.html",
    "fediverse reply": "@alice@fosstodon.org thanks, that fixed it",
    "disagreement": "I disagree with the point about interest rates; the 2008 data says otherwise.",
}


def scored_by_label(scorer: Scorer, rows: list[dict[str, Any]]
                    ) -> tuple[list[tuple[str, Verdict]], list[tuple[str, Verdict]]]:
    """(text, verdict) of an evaluation set's ham, and of its spam."""
    verdicts = scorer.score_many([as_comment(r) for r in rows])
    by_label: dict[str, list[tuple[str, Verdict]]] = {"ham": [], "spam": []}
    for row, verdict in zip(rows, verdicts):
        by_label[row["label"]].append((row["comment_content"], verdict))
    return by_label["ham"], by_label["spam"]


def test_russian_ukrainian_and_greek_comments(scorer: Scorer) -> None:
    # A set written apart from the seed corpus and never trained on (tests/eval_data.py).
    # Trained on the seed corpus before ham_c/spam_c, the model held 17 of its 30 ham and
    # flagged 2 (a Russian word like 'на' counted as a sign of spam); it flagged 14 of 15 spam.
    ham, spam = scored_by_label(scorer, eval_rows())
    assert len(ham) >= 30 and len(spam) >= 15
    flagged_ham = [(text, v.score) for text, v in ham if v.tier in (SPAM, DISCARD)]
    held_ham = [(text, v.score) for text, v in ham if v.tier == UNSURE]
    missed_spam = [(text, v.tier, v.score) for text, v in spam if v.tier not in (SPAM, DISCARD)]
    assert len(flagged_ham) <= 1, flagged_ham
    assert len(held_ham) <= len(ham) / 4, held_ham
    assert len(spam) - len(missed_spam) >= 2 * len(spam) / 3, missed_spam


def test_comments_in_the_world_s_other_scripts(scorer: Scorer) -> None:
    # Chinese (simplified and traditional), Japanese, Korean, Thai, Persian, Hebrew, Hindi, Arabic,
    # Indonesian, Vietnamese, Turkish, Bengali and Swahili: 80 ham, 39 spam, written apart from
    # the seed corpus and never trained on (tests/eval_data.py). Trained on the seed corpus
    # before ham_d/spam_d (no Chinese at all, no Thai, Persian or Hebrew), the model flagged 7
    # of the ham (complaints quoting a hotline or a price) and held 18 (all six Thai ones), and
    # caught 24 of the spam, letting 3 through as ham (a 六合彩 tip, Korean escort ads,
    # Hindi channel promotion). With the e-mail domain a feature it caught 35; without it (features
    # version 4: the seed's ham addresses are all at example domains, which made the seed's spam easy
    # to tell apart, and so the thresholds low), the spam threshold rose from 0.70 to 0.86 and 25 are
    # caught, the rest held for a moderator, not published.
    ham, spam = scored_by_label(scorer, eval_rows(WORLD_EVAL_SET))
    assert len(ham) >= 70 and len(spam) >= 35
    flagged_ham = [(text, v.score) for text, v in ham if v.tier in (SPAM, DISCARD)]
    held_ham = [(text, v.score) for text, v in ham if v.tier == UNSURE]
    caught = [text for text, v in spam if v.tier in (SPAM, DISCARD)]
    passed_spam = [(text, v.score) for text, v in spam if v.tier == HAM]
    assert len(flagged_ham) <= 3, flagged_ham
    assert len(held_ham) <= len(ham) / 6, held_ham
    assert len(caught) >= 0.6 * len(spam), [(t, v.tier, v.score) for t, v in spam if t not in caught]
    assert len(passed_spam) <= 2, passed_spam


def test_ordinary_comments_on_sites_whose_topic_is_spam_s_topic(scorer: Scorer) -> None:
    # Readers of health, money, betting, crypto, sex-education, SEO, essay, phone-repair, dating
    # and video creators' sites use spam's words ("viagra", "payday loan", "casino bonus",
    # "subscribe"): 131 ham and 45 spam aimed at those sites, written apart from the seed and
    # never trained on (tests/eval_data.py). Trained on the seed before ham_f/spam_e, the model
    # flagged 2 of the ham ("Subscribe buttons on my channel stopped working", "Earning $500 a
    # month ... paid off my student loan") and held 16, up to 4 on one site's topic; it caught
    # 44 of the spam and passed one as ham (a wallet "sync" asking for the seed phrase).
    rows = eval_rows(TOPIC_EVAL_SET)
    ham, spam = scored_by_label(scorer, rows)
    assert len(ham) >= 120 and len(spam) >= 40
    flagged_ham = [(text, v.score) for text, v in ham if v.tier in (SPAM, DISCARD)]
    held_ham = [(text, v.score) for text, v in ham if v.tier == UNSURE]
    assert len(flagged_ham) <= 1, flagged_ham
    assert len(held_ham) <= len(ham) // 12, held_ham
    topic_of = {row["comment_content"]: row["topic"] for row in rows}
    not_passed = Counter(topic_of[text] for text, v in ham if v.tier != HAM)
    assert max(not_passed.values(), default=0) <= 2, not_passed  # no site's readers bear the brunt
    caught = [text for text, v in spam if v.tier in (SPAM, DISCARD)]
    passed_spam = [(text, v.score) for text, v in spam if v.tier == HAM]
    assert len(caught) >= 0.9 * len(spam), [(t, v.tier, v.score) for t, v in spam if t not in caught]
    assert len(passed_spam) <= 1, passed_spam


@pytest.mark.parametrize("name", sorted(SPAM_EXAMPLES))
def test_obvious_spam_is_flagged(scorer: Scorer, name: str) -> None:
    verdict = scorer.score(Comment(comment_content=SPAM_EXAMPLES[name]))
    assert verdict.tier in (SPAM, DISCARD), (name, verdict)


@pytest.mark.parametrize("name", sorted(HAM_EXAMPLES))
def test_ordinary_comments_pass(scorer: Scorer, name: str) -> None:
    verdict = scorer.score(Comment(comment_content=HAM_EXAMPLES[name]))
    assert verdict.tier == HAM, (name, verdict)


@pytest.mark.parametrize("address", ["jane.doe@gmail.com", "j.smith@outlook.com", "mike_r@yahoo.com",
                                     "anna@hotmail.com", "k.tanaka@icloud.com", "sam@protonmail.com"])
def test_an_ordinary_commenters_webmail_address_changes_nothing(scorer: Scorer, address: str) -> None:
    # Found by a probe: with the e-mail's domain a feature, ordinary comments from gmail.com were
    # flagged 6 times in 10 (the seed writes its ham commenters' addresses at example domains).
    for name, text in sorted(HAM_EXAMPLES.items()):
        verdict = scorer.score(Comment(comment_content=text, comment_author="Jane", comment_author_email=address))
        assert verdict.tier == HAM, (name, address, verdict)
        assert verdict.score == scorer.score(Comment(comment_content=text, comment_author="Jane")).score


@pytest.mark.parametrize("greeting", ["hi", "Hi!", "hey", "Hello everyone", "hi from Oslo"])
def test_a_greeting_alone_is_not_spam(scorer: Scorer, greeting: str) -> None:
    # The seed's spam opened with "Hi" far more often than its ham, and "hi" alone scored 0.78
    # (spam) on the word alone; ham_e.jsonl gives the greeting back to readers.
    verdict = scorer.score(Comment(comment_content=greeting))
    assert verdict.tier not in (SPAM, DISCARD), (greeting, verdict)


VARIED = [
    "Is there a way to run this on a Raspberry Pi 4?",
    "Thanks, the second step was exactly what I was missing.",
    "Merci pour cet article, très utile.",
    "Great recipe, my kids loved it",
    "I disagree with the conclusion about rates",
    "Check out my channel, sub for sub!",
    "Cheap viagra without prescription, order today",
    "Win a free iPhone, claim your prize now",
    "What lens did you use?",
    "Nice post",
    "ok",
    "Earn $500 a day from home",
    "The photos from the harbour are beautiful",
    "Typo in paragraph three: 'their' should be 'there'",
    "Follow me on insta: deals_4u",
    "Danke für die Anleitung, hat sofort funktioniert.",
]
SHORT_LINKS = ["http://bit.ly/3abc", "https://tinyurl.com/y8k2", "cutt.ly/xyz", "https://goo.gl/abc",
               "t.me/freebies"]
AUTHOR_URLS = ["https://example.com", "http://www.myblog.net/", "bit.ly/x", "shop.xyz",
               "https://github.com/alice", "https://alice.dev", "example dot org"]


@pytest.mark.parametrize("text", VARIED)
def test_a_shortener_link_never_lowers_the_score(scorer: Scorer, text: str) -> None:
    before = score(scorer, text)
    for link in SHORT_LINKS:
        for changed in (f"{text} {link}", f"{link} {text}"):
            assert score(scorer, changed) >= before - 1e-12, (changed, before)


@pytest.mark.parametrize("text", VARIED)
def test_an_author_url_never_lowers_the_score(scorer: Scorer, text: str) -> None:
    before = score(scorer, text)
    for url in AUTHOR_URLS:
        assert score(scorer, text, comment_author_url=url) >= before - 1e-12, (text, url)


_RAW = re.compile(r"\b(?:words|chars|meta)__|^(?:link_|author_url|email_|cue=|type=|links=|length=)|xxurl|xxemail")


def test_a_held_comment_is_held_for_what_raised_its_score(scorer: Scorer) -> None:
    # With the unsure threshold below 0.5 (the default model's is about 0.25), a comment held
    # at, say, 0.3 used to get only the reasons that lowered its score.
    low_unsure = Thresholds(0.1, 0.99, 0.999)
    held = [scorer.score(Comment(comment_content=t), low_unsure) for t in list(HAM_EXAMPLES.values()) + VARIED]
    below_half = [v for v in held if v.tier == "unsure" and v.score < 0.5]
    raised = [v for v in below_half if any(r.weight > 0 for r in v.reasons)]
    assert raised  # reasons chosen by the score, not the tier, gave none
    for verdict in below_half:
        # A comment this low threshold holds although nothing it says raised its score (held by
        # the intercept and the unnamed 'type=comment' alone, as "Great recipe, my kids loved it"
        # is at 0.10 since the seed gained ham_d/spam_d) gets the strongest reasons either way,
        # which are then all ones that lowered it; never a mixture.
        assert verdict.reasons, verdict
        assert verdict in raised and all(r.weight > 0 for r in verdict.reasons) or \
            all(r.weight < 0 for r in verdict.reasons), verdict


def test_reasons_follow_the_verdict_and_are_never_missing() -> None:
    weights = {"word 'casino'": 1.0, "no links in the text": -2.0, "word 'the'": 0.01}
    assert [r.text for r in top_reasons(weights, True)] == ["word 'casino'"]
    assert [r.text for r in top_reasons(weights, False)] == ["no links in the text"]
    # Nothing weighty the verdict's way: the lighter ones that were, else the strongest either way.
    assert [r.text for r in top_reasons({"a": -2.0, "b": 0.01}, True)] == ["b"]
    assert [r.text for r in top_reasons({"a": -2.0}, True)] == ["a"]


def test_placeholders_read_as_words_in_phrases_and_one_link_is_one_reason() -> None:
    assert describe_ngram("at xxurl") == "phrase 'at [link]'"
    assert describe_ngram("xxemail me") == "phrase '[e-mail address] me'"
    assert describe_ngram("xxurl") == describe_meta("links=1") == "a link in the text"


def test_reasons_are_human_words(scorer: Scorer) -> None:
    texts = list(SPAM_EXAMPLES.values()) + list(HAM_EXAMPLES.values()) + VARIED
    comments = [Comment(comment_content=t, comment_author_url="https://shop.xyz",
                        comment_author_email="a@mail.ru") for t in texts]
    seen_any = False
    for verdict in scorer.score_many(comments):
        for reason in verdict.reasons:
            seen_any = True
            assert not _RAW.search(reason.text), reason.text
            assert "__" not in reason.text
            # reasons point the way the verdict went: held or flagged for what raised the score
            assert (reason.weight > 0) == (verdict.tier != "ham"), (verdict, reason)
    assert seen_any


def test_shortener_reason_is_named_when_it_weighs_enough(scorer: Scorer) -> None:
    names = list(feature_names(scorer.pipeline).astype(str))
    coef = scorer.pipeline.named_steps["classifier"].coef_[0]
    cases = [("see goo.gl/abc", "goo.gl"), ("hot singles tinyurl.com/x9", "tinyurl.com"),
             ("cheap pills bit.ly/3xPills", "bit.ly"), ("get it here cutt.ly/abc now", "cutt.ly"),
             ("free stuff at https://rb.gy/q1", "rb.gy")]
    named = 0
    for text, host in cases:
        verdict = scorer.score(Comment(comment_content=text))
        token = f"meta__link_shortener={host}"
        weight = float(coef[names.index(token)]) if token in names else 0.0
        mentioned = any("URL shortener" in r.text for r in verdict.reasons)
        weights = [r.weight for r in verdict.reasons]
        among_top = verdict.score >= 0.5 and weight >= 0.05 and (
            len(weights) < 5 or weight > min(weights) + 1e-9)
        if among_top:
            assert mentioned, (text, weight, verdict.reasons)
        named += mentioned
    assert named >= 1  # the check above is not vacuous


def test_scorer_score_matches_pipeline_probability(scorer: Scorer) -> None:
    comments = [Comment(comment_content=t) for t in VARIED + list(SPAM_EXAMPLES.values())]
    expected = scorer.pipeline.predict_proba(comments)[:, 1]
    got = np.array([scorer.score(c).score for c in comments])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_score_many_equals_one_by_one(scorer: Scorer) -> None:
    comments = [Comment(comment_content=t, comment_author_url=u)
                for t, u in zip(VARIED, AUTHOR_URLS * 3)]
    together = scorer.score_many(comments)
    alone = [scorer.score(c) for c in comments]
    assert [v.tier for v in together] == [v.tier for v in alone]
    np.testing.assert_allclose([v.score for v in together], [v.score for v in alone], rtol=0, atol=1e-12)
    assert [[r.text for r in v.reasons] for v in together] == [[r.text for r in v.reasons] for v in alone]
    assert scorer.score_many([]) == []


def test_stored_thresholds_obey_the_policy(trained) -> None:
    scorer, metadata = trained
    oof = metadata["metrics"]["out_of_fold"]
    assert oof["false_positive_rate"] <= 0.01
    assert oof["n"] == metadata["training"]["rows"] >= 2000
    assert oof["thresholds"] == metadata["thresholds"]
    t = scorer.thresholds
    assert (t.unsure, t.spam, t.discard) == tuple(metadata["thresholds"][k] for k in ("unsure", "spam", "discard"))
    assert 0.5 <= t.spam <= t.discard and t.unsure <= t.spam
    assert oof["roc_auc"] > 0.95


def _struck(text: str) -> str:
    return "".join(c + "\u0336" if c.isalpha() else c for c in text)


def _spelt_out(text: str) -> str:
    # Each word of five letters or more spelt out, as "c a s i n o": the way a spammer hides keywords.
    return " ".join(" ".join(word) if word.isalpha() and len(word) >= 5 else word for word in text.split())


#: Disguises a reader sees through, each of which took spam to ham or to "unsure" in a probe.
DISGUISES = {
    "Cyrillic look-alikes": lambda text: text.translate(str.maketrans("aeocp", "аеоср")),
    "small capitals": lambda text: text.translate(str.maketrans("aceimnorstu", "ᴀᴄᴇɪᴍɴᴏʀꜱᴛᴜ")),
    "struck through": _struck,
    "spelt out": _spelt_out,
    "filler words": lambda text: text + " the" * 30,
}


@pytest.mark.parametrize("disguise", sorted(DISGUISES))
@pytest.mark.parametrize("name", sorted(SPAM_EXAMPLES))
def test_disguises_do_not_hide_spam(scorer: Scorer, name: str, disguise: str) -> None:
    text = SPAM_EXAMPLES[name]
    disguised = DISGUISES[disguise](text)
    assert disguised != text
    verdict = scorer.score(Comment(comment_content=disguised))
    assert verdict.tier in (SPAM, DISCARD), (disguised, verdict)


@pytest.mark.parametrize("plain, disguised", [
    ("[url=https://lucky-spins.xyz/]here[/url]", '[url="https://lucky-spins.xyz/"]here[/url]'),  # XenForo's quotes
    ('<a href="https://lucky-spins.xyz/">here</a>', '<a href="//lucky-spins.xyz/">here</a>'),    # protocol-relative
    ("http://lucky-spins.xyz/", "http://google.com@lucky-spins.xyz/"),  # a user name that looks like a host
    ("http://203.0.113.5/", "http://3405803853/"),                      # the address as one number
])
def test_a_link_written_another_way_never_lowers_the_score(scorer: Scorer, plain: str, disguised: str) -> None:
    text = "Claim your free spins {}"
    assert score(scorer, text.format(disguised)) >= score(scorer, text.format(plain)) - 1e-9


# Spam's own words spelt with digits, symbols, accents or other alphabets (model.keywords), on the
# probe set written for it (tests/data/keyword_disguises.json). Before the reading, each of these
# took 18-20 of the 20 comments below their plain score, and 2 or 3 of them to ham (2026-11-28).
KEYWORD_DATA = Path(__file__).resolve().parent / "data" / "keyword_disguises.json"
_LEET = {"viagra": "v1agra", "cialis": "c1al1s", "casino": "ca$ino", "crypto": "cr7pto", "free": "fr33",
         "bonus": "b0nus", "porn": "p0rn", "loans": "l0ans", "loan": "l0an", "adult": "@dult", "money": "mon€y",
         "bitcoin": "b1tc0in", "pills": "p1ll$", "cash": "ca$h", "sexy": "s3xy", "forex": "f0rex",
         "spins": "$pins", "jackpot": "j@ckpot", "profit": "pr0fit", "prize": "pr1ze", "dating": "d@ting",
         "singles": "s1ngles", "essay": "3ssay", "password": "pa$$word", "subscribe": "subscr1be",
         "channel": "ch@nnel", "pharmacy": "ph@rmacy", "backlinks": "b@cklinks", "webcam": "w3bcam",
         "invest": "inv3st", "investment": "inv3stment", "poker": "p0ker", "slots": "sl0ts",
         "support": "supp0rt", "earn": "3arn", "win": "w1n", "claim": "cl@im", "gift": "g1ft"}
_ACCENTS = str.maketrans("aeiou", "áéïöú")
_OTHER_ALPHABETS = str.maketrans({"o": "օ", "u": "ս", "a": "ɑ", "g": "ɡ", "i": "ı", "h": "հ", "n": "ո"})
_CHEROKEE = str.maketrans(dict(zip("ABCDEGHIJKLMPRSTVWZ", "ᎪᏴᏟᎠᎬᏀᎻᎥᎫᏦᏞᎷᏢᎡᏚᎢᏙᎳᏃ")))


def _each_keyword(text: str, spell) -> str:
    """``text`` with each word of _LEET (the words spam disguises) respelt by ``spell``."""
    def respell(match: re.Match[str]) -> str:
        word = match.group(0)
        return spell(word.lower()) if word.lower() in _LEET else word
    return re.sub(r"[A-Za-z]+", respell, text)


KEYWORD_DISGUISES = {
    "leetspeak": lambda text: _each_keyword(text, _LEET.__getitem__),
    # Accents disguise a word on two or more letters; one accent is how some language writes a
    # word of its own (Vietnamese "loạn" is no "loan"), so such spellings are left as written.
    "accents": lambda text: _each_keyword(
        text, lambda w: w.translate(_ACCENTS) if sum(c in "aeiou" for c in w) >= 2 else w),
    "other alphabets": lambda text: _each_keyword(text, lambda w: w.translate(_OTHER_ALPHABETS)),
    "Cherokee capitals": lambda text: _each_keyword(text, lambda w: w.upper().translate(_CHEROKEE)),
}


def _keyword_spam() -> list[str]:
    return json.loads(KEYWORD_DATA.read_text(encoding="utf-8"))["spam"]


@pytest.mark.parametrize("disguise", sorted(KEYWORD_DISGUISES))
def test_spam_words_in_disguise_score_no_lower_than_plain(scorer: Scorer, disguise: str) -> None:
    texts = _keyword_spam()
    disguised = [KEYWORD_DISGUISES[disguise](t) for t in texts]
    assert len(texts) >= 20 and all(d != t for d, t in zip(disguised, texts))
    plain = scorer.score_many([Comment(comment_content=t) for t in texts])
    hidden = scorer.score_many([Comment(comment_content=t) for t in disguised])
    lower = [(d, round(h.score, 3), round(p.score, 3)) for d, h, p in zip(disguised, hidden, plain)
             if h.score < p.score - 1e-9]
    assert lower == []


_LEET_EVERY_WORD = str.maketrans("ieoa", "1304")
_ACCENT_CHOICES = {"a": "áàâäã", "e": "éèêë", "i": "íìîï", "o": "óòôöõ", "u": "úùûü"}


def _accent_every_vowel(text: str) -> str:
    return "".join(_ACCENT_CHOICES[c][i % len(_ACCENT_CHOICES[c])] if c in _ACCENT_CHOICES else c
                   for i, c in enumerate(text))


@pytest.mark.parametrize("disguise", ["leetspeak in every word", "accents on every vowel"])
def test_whole_comments_in_disguise_are_mostly_still_flagged(scorer: Scorer, disguise: str) -> None:
    # Only spam's own words are read back; the rest of a comment stays disguised, so a comment
    # may score lower than plain, but not much lower (before the reading, 6 and 2 of the 20 were
    # flagged, against 18 as written, with mean scores of 0.53 and 0.42 against 0.89).
    respell = ((lambda t: " ".join(w.translate(_LEET_EVERY_WORD) if len(w) >= 4 else w for w in t.split(" ")))
               if disguise.startswith("leet") else _accent_every_vowel)
    texts = _keyword_spam()
    plain = scorer.score_many([Comment(comment_content=t) for t in texts])
    hidden = scorer.score_many([Comment(comment_content=respell(t)) for t in texts])
    flagged = lambda verdicts: sum(v.tier in (SPAM, DISCARD) for v in verdicts)
    assert flagged(hidden) >= flagged(plain) - 2, (flagged(hidden), flagged(plain))
    assert np.mean([v.score for v in hidden]) >= np.mean([v.score for v in plain]) - 0.05
