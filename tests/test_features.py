"""Tests of model.features (metadata tokens) and model.cues (spam-intent phrases)."""
from __future__ import annotations

import pytest

from model.comment import Comment
from model.cues import CUE_DESCRIPTIONS, CUES, find_cues
from model.features import prepare
from model.normalize import normalize
from model.reasons import describe_meta


def meta(text: str = "", **fields: str) -> tuple[str, ...]:
    return prepare(Comment(comment_content=text, **fields)).meta


def cues(text: str) -> list[str]:
    return find_cues(normalize(text).text)


# --- links -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, token", [
    ("no links at all here", "links=0"),
    ("see https://example.com", "links=1"),
    ("see https://example.com and https://example.org", "links=2"),
    ("a.xyz b.xyz c.xyz", "links=3+"),
    ("a.xyz b.xyz c.xyz d.xyz e.xyz", "links=3+"),
])
def test_link_count_tokens(text: str, token: str) -> None:
    tokens = meta(text)
    assert token in tokens
    assert sum(t.startswith("links=") for t in tokens) == 1


def test_link_host_tld_and_shortener_tokens() -> None:
    tokens = meta("cheap meds http://bit.ly/abc and https://www.pharma-deals.ru/buy")
    assert "link_host=bit.ly" in tokens
    assert "link_tld=ly" in tokens
    assert "link_shortener=bit.ly" in tokens
    assert "link_host=pharma-deals.ru" in tokens
    assert "link_tld=ru" in tokens
    assert "link_shortener=pharma-deals.ru" not in tokens
    assert "link_obfuscated" not in tokens


def test_obfuscated_link_token() -> None:
    assert "link_obfuscated" in meta("visit pills-shop dot com today")
    assert "link_obfuscated" not in meta("visit https://pills-shop.com today")


def test_author_url_tokens() -> None:
    assert meta("hi") == meta("hi", comment_author_url="   ")
    plain = meta("hi", comment_author_url="https://www.myblog.net/about")
    assert "author_url" in plain and "author_url_tld=net" in plain
    assert not any(t.startswith("author_url_shortener") for t in plain)
    short = meta("hi", comment_author_url="tinyurl.com/xyz")
    assert "author_url_shortener=tinyurl.com" in short and "author_url_tld=com" in short
    assert not any(t.startswith("author_url") for t in meta("hi"))


def test_the_authors_email_domain_is_no_feature() -> None:
    """Features version 4: the seed's ham addresses are all at example domains, so the domain taught
    the model that real webmail is spam (see model.features.prepare)."""
    for address in ("Someone@Mail.Example.ORG", "jane.doe@gmail.com", "not-an-address"):
        assert not any(t.startswith("email_") for t in meta("hi", comment_author_email=address))
    assert "email_in_text" in meta("mail me at a@b-deals.com")
    assert "email_in_text" not in meta("mail me please")


def test_comment_type_defaults_to_comment() -> None:
    assert "type=comment" in meta("hello")
    assert "type=trackback" in meta("hello", comment_type=" Trackback ")
    assert sum(t.startswith("type=") for t in meta("hello", comment_type="reply")) == 1


@pytest.mark.parametrize("length, bucket", [
    (5, "lt20"), (19, "lt20"), (20, "lt60"), (100, "lt150"), (300, "lt400"), (1000, "lt1500"), (2000, "long"),
])
def test_length_buckets(length: int, bucket: str) -> None:
    tokens = meta("ab" * (length // 2) + "c" * (length % 2))
    assert f"length={bucket}" in tokens
    assert sum(t.startswith("length=") for t in tokens) == 1


def test_capital_letters() -> None:
    assert "caps=most" in meta("THIS IS ALL SHOUTING HERE")
    assert "caps=many" in meta("THIS IS VERY loud and quiet")
    calm = meta("This is an ordinary Sentence about Paris.")
    assert "caps=most" not in calm and "caps=many" not in calm
    assert not any(t.startswith("caps") for t in meta("OK GO"))  # too few letters to judge


def test_repeated_letters_and_punctuation() -> None:
    assert "repeated_letters" in meta("pleeeease reply")
    assert "repeated_letters" not in meta("a bookkeeper's balloon")  # doubles are ordinary
    assert "repeated_punctuation" in meta("wow!!! amazing")
    assert "repeated_punctuation" in meta("what???")
    assert "repeated_punctuation" not in meta("wow! amazing. really?")


def test_phone_number() -> None:
    assert "phone_number" in meta("call +1 (800) 555-0199 now")
    assert "phone_number" in meta("ring 0800 123 4567")
    assert "phone_number" not in meta("I have 3 kids and 2 cats since 2019")


def test_money() -> None:
    assert "money" in meta("earn $500 today")
    assert "money" in meta("only 20 usd")
    assert "money" in meta("€ 30 off")
    assert "money" not in meta("I spent 20 minutes on this")


def test_every_meta_token_has_words() -> None:
    tokens = meta("WIN!!! call +1 800 555 0199 http://bit.ly/x hxxp://a-b.com pleeease $5 check out my channel",
                  comment_author_url="https://tinyurl.com/q", comment_author_email="a@b.ru")
    for token in tokens:
        described = describe_meta(token)
        assert described != token, f"token {token!r} has no description"
        assert "=" not in described and "_" not in described


# --- cues -----------------------------------------------------------------------------

CUE_CASES = {
    "self_promotion": ("Check my new YouTube channel, the covers are good",
                       "The channel you linked in the post is great"),
    "asks_to_subscribe": ("sub 4 sub anyone? I sub back", "I will subscribe to the newsletter of this blog"),
    "asks_to_visit": ("Please visit my blog for more tips", "I visited Rome last year and loved it"),
    "asks_for_likes": ("like this comment so more people see it", "People like this town because it is quiet"),
    "money_offer": ("I make money from home with this one trick", "This is free software under the MIT licence"),
    "social_handle": ("add me on snapchat: hotgirl_88", "I deleted snapchat last year"),
    "text_to_short_code": ("Txt WIN to 80082 to claim", "I texted my sister about the recipe"),
    "premium_rate": ("Calls cost 150p/min from a landline", "It took 150 minutes to bake"),
    "prize_claim": ("Congratulations! You have won a guaranteed prize", "We finally won the match on Sunday"),
    "reply_with_keyword": ("For a free ringtone reply TONE now", "Reply to my comment if you agree"),
    "opt_out": ("To unsubscribe send STOP to 80082", "Stop it, you are too funny"),
}


def test_every_cue_has_a_case_and_a_description() -> None:
    assert set(CUE_CASES) == set(CUES)
    assert set(CUE_DESCRIPTIONS) == set(CUES)


@pytest.mark.parametrize("name", sorted(CUE_CASES))
def test_cue_fires_on_spam(name: str) -> None:
    positive, _ = CUE_CASES[name]
    assert name in cues(positive)
    assert f"cue={name}" in meta(positive)


@pytest.mark.parametrize("name", sorted(CUE_CASES))
def test_cue_silent_on_nearby_legitimate_text(name: str) -> None:
    _, negative = CUE_CASES[name]
    assert name not in cues(negative)
    assert f"cue={name}" not in meta(negative)


def test_ordinary_comment_has_no_cues() -> None:
    assert cues("Thanks for the clear explanation; the second example finally made it click for me.") == []


def test_cue_keyword_shortcut_never_changes_a_result() -> None:
    from model.cues import CUE_KEYWORDS, find_cues_exhaustively
    from model.normalize import normalize
    from training.loaders import load_files
    from training.seed import seed_files

    assert set(CUE_KEYWORDS) == set(CUES)
    texts = [normalize(r.comment.comment_content).text for r in load_files(seed_files()).records]
    texts += [positive for positive, _ in CUE_CASES.values()] + [negative for _, negative in CUE_CASES.values()]
    differing = [t for t in texts if find_cues(t) != find_cues_exhaustively(t)]
    assert not differing, differing[:3]
