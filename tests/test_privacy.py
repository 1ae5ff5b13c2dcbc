"""Personal-data minimising (store.privacy, store.personal_text): what a stored comment keeps.

The store-level tests (rows in checks and feedback, both databases) are in test_store.py; these
take the policy itself, on the cases a second probe found.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from model.comment import Comment
from store.privacy import Privacy

SECRET = b"test-secret-0123456789abcdef"
PSEUDONYM = re.compile(r"hmac:[0-9a-f]{32}")


@pytest.fixture
def privacy() -> Privacy:
    return Privacy(SECRET)


def stored_extra(privacy: Privacy, **extra: str) -> dict[str, str]:
    return dict(privacy.minimise(Comment(comment_content="hi", extra=extra)).extra)


def ip_pseudonym(privacy: Privacy, address: str) -> str:
    """What the address becomes as a comment's user_ip."""
    return privacy.minimise(Comment(user_ip=address)).user_ip


def email_pseudonym(privacy: Privacy, address: str) -> str:
    return privacy.minimise(Comment(comment_author_email=address)).comment_author_email


def with_pseudonyms(privacy: Privacy, template: str) -> str:
    """``template`` with each ``{address}`` as its pseudonym (``{mail:joe@example.org}`` for an e-mail)."""
    def one(found: re.Match[str]) -> str:
        text = found.group(1)
        return email_pseudonym(privacy, text[5:]) if text.startswith("mail:") else ip_pseudonym(privacy, text)
    return re.sub(r"\{([^{}]+)\}", one, template)


# --- 1. what is stored never grows much past what was sent ----------------------------------

@pytest.mark.parametrize("value", [
    ("::1 " * 125_000)[:-1],  # the probe's Akismet form body: 500 KB stored as 4.75 M characters
    ("::1 " * 16_000)[:-1],  # the probe's JSON body: 64 KB stored as 608 KB
    " ".join(f"10.0.{i // 256}.{i % 256}" for i in range(20_000)),
    "a@b.io " * 20_000,
    "::1 " * 20,  # past the number hidden one by one
], ids=["500KB-of-::1", "64KB-of-::1", "distinct-IPv4", "e-mails", "twenty"])
def test_a_value_of_many_addresses_becomes_one_pseudonym(privacy: Privacy, value: str) -> None:
    """Found by a probe: each address became a 37-character pseudonym where it stood, so a value of
    "::1 ::1 ..." was stored 9.5 times as long as sent (300 such Akismet checks put the recorder
    20 s behind and a worker at 1.6 GB). A value holding more than a few, or growing by more than
    a little, is now one pseudonym."""
    stored = stored_extra(privacy, POST_note=value)["POST_note"]
    assert PSEUDONYM.fullmatch(stored)
    assert stored == privacy.pseudonym(value)


def test_a_few_addresses_are_hidden_where_they_stand_and_growth_stays_small(privacy: Privacy) -> None:
    value = "seen from ::1, ::2 and 10.0.0.1; ask a@b.io"
    stored = stored_extra(privacy, note=value)["note"]
    assert stored == with_pseudonyms(privacy, "seen from {::1}, {::2} and {10.0.0.1}; ask {mail:a@b.io}")
    long_text = "word " * 2000 + " ".join(f"10.0.0.{i}" for i in range(16))  # 16 in 10 KB: a tenth is room enough
    assert stored_extra(privacy, note=long_text)["note"].count("hmac:") == 16


def test_many_fields_of_one_short_address_do_not_grow_the_comment_much(privacy: Privacy) -> None:
    """Each of "a1=::1&a2=::1&..." grows seven-fold as a pseudonym: past a few KiB of growth (or a
    quarter of what was sent), the rest of such fields are left out; none is kept in clear."""
    extra = {f"a{i}": "::1" for i in range(20_000)}
    sent = sum(len(k) + len(v) for k, v in extra.items())
    stored = stored_extra(privacy, **extra, POST_comment="no address here", HTTP_ACCEPT="text/html")
    assert stored["POST_comment"] == "no address here" and stored["HTTP_ACCEPT"] == "text/html"
    assert "::1" not in stored.values()
    assert sum(len(k) + len(v) for k, v in stored.items()) <= sent + sent // 4 + 100
    assert 100 < len(stored) < 20_000


# --- 2. addresses written other ways ----------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("IPv6:2001:db8::42", "IPv6:{2001:db8::42}"),
    ("addr:2001:db8::42 ip:2001:db8::43", "addr:{2001:db8::42} ip:{2001:db8::43}"),
    ("failed from 2001:db8::43: timeout", "failed from {2001:db8::43}: timeout"),
    ("2001:db8:5:6::", "{2001:db8:5:6::}"),
    ("route 2001:db8:5:6::/64.", "route {2001:db8:5:6::}/64."),
    ("?q=whois%20198.51.100.23&ip%3D198.51.100.24", "?q=whois%20{198.51.100.23}&ip%3D{198.51.100.24}"),
    ("redirect_to=http%3A%2F%2F192.168.1.5%2F", "redirect_to=http%3A%2F%2F{192.168.1.5}%2F"),
    ("?ip=2001%3Adb8%3A%3A42&x=1", "?ip={2001:db8::42}&x=1"),
    ("%2198.51.100.23", "%21{98.51.100.23}"),  # %21 is one character, "!"
    ("[2001:db8::1]:8080 and fe80::1%eth0", "[{2001:db8::1}]:8080 and {fe80::1}%eth0"),
    ("mapped ::ffff:203.0.113.7 is 203.0.113.7", "mapped {203.0.113.7} is {203.0.113.7}"),
])
def test_addresses_written_every_way_are_hidden(privacy: Privacy, value: str, expected: str) -> None:
    """Found by a probe: IPv6 after a label and a colon, IPv6 before a colon or ending in '::', and
    IPv4 right after a percent-escape were stored in clear."""
    assert stored_extra(privacy, note=value)["note"] == with_pseudonyms(privacy, expected)


# --- 3. one address, one pseudonym --------------------------------------------------------------

def test_an_address_has_one_pseudonym_however_it_is_written(privacy: Privacy) -> None:
    """Found by a probe: "2001:DB8::42", "2001:db8::42" and "2001:db8:0:0:0:0:0:42" hashed
    differently as user_ip, and REMOTE_ADDR "::ffff:203.0.113.7" unlike "203.0.113.7" elsewhere."""
    forms = ("2001:DB8::42", "2001:db8::42", "2001:db8:0:0:0:0:0:42", " 2001:0db8::0042 ")
    assert len({ip_pseudonym(privacy, form) for form in forms}) == 1
    v4 = ip_pseudonym(privacy, "203.0.113.7")
    assert ip_pseudonym(privacy, "::ffff:203.0.113.7") == v4
    stored = stored_extra(privacy, REMOTE_ADDR="::ffff:203.0.113.7", HTTP_X_FORWARDED_FOR="203.0.113.7",
                          note="from 203.0.113.7 and 2001:DB8:0::42")
    assert stored["REMOTE_ADDR"] == stored["HTTP_X_FORWARDED_FOR"] == v4
    assert stored["note"] == f"from {v4} and {ip_pseudonym(privacy, '2001:db8::42')}"


# --- 4. e-mail addresses ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["POST_e-mail", "POST_mail", "POST_e_mail", "POST_user_mail", "g2-e-mail",
                                  "POST_email", "emailAddress"])
def test_fields_named_for_an_e_mail_are_hashed_as_e_mails(privacy: Privacy, name: str) -> None:
    """Found by a probe: only names holding EMAIL were taken for e-mail fields."""
    expected = email_pseudonym(privacy, "joe@example.org")
    assert stored_extra(privacy, **{name: "Joe@Example.org"})[name] == expected
    assert stored_extra(privacy, **{name: "joe at example dot org"})[name].startswith("hmac:")


@pytest.mark.parametrize("sent", ["joe@10.0.0.5", "joe@example.org, 10.0.0.5", "joe@[2001:db8::1]"])
def test_an_e_mail_pseudonym_keeps_only_a_host_name_after_the_at(privacy: Privacy, sent: str) -> None:
    """An e-mail's pseudonym keeps its domain; what a field holds after an '@' that is no host name
    (an address literal, more text) was kept in clear with it."""
    for stored in (email_pseudonym(privacy, sent), stored_extra(privacy, POST_email=sent)["POST_email"]):
        assert PSEUDONYM.fullmatch(stored)


def test_e_mail_addresses_in_any_value_are_hidden_where_they_stand(privacy: Privacy) -> None:
    stored = stored_extra(privacy, note="write to Joe@Example.org, or joe%40example.org.",
                          REQUEST_URI="/?email%3Djoe%40example.org&x=1", HTTP_X_MAILER="PHPMailer 6.9",
                          POST_comment="@ann thanks! (me@home, not an address)")
    joe = email_pseudonym(privacy, "joe@example.org")
    assert joe.endswith("@example.org")  # the domain is kept, as in comment_author_email
    assert stored["note"] == f"write to {joe}, or {joe}."
    assert stored["REQUEST_URI"] == f"/?email%3D{joe}&x=1"
    assert stored["HTTP_X_MAILER"] == "PHPMailer 6.9"
    assert stored["POST_comment"] == "@ann thanks! (me@home, not an address)"
    again = privacy.minimise(Comment(extra=stored))
    assert dict(again.extra) == stored  # a stored comment minimised again stays as it is


# --- 5. credentials ----------------------------------------------------------------------------

NESTED = {"user": {"password": "s3cret!", "api_key": "sk_live_abc", "name": "Ann"},
          "headers": [{"Authorization": "Bearer xyz"}, {"Accept": "text/html"}],
          "conn": {"client_ip": "203.0.113.7", "via": ["from 10.0.0.5"], "mail": "Joe@Example.org"}}


@pytest.mark.parametrize("personal", [False, True], ids=["hashed", "store_personal_data"])
def test_names_inside_a_values_json_text_follow_the_same_rules(personal: bool) -> None:
    """Found by a probe: the JSON API keeps a nested object as its JSON text in extra, and
    {"user": {"password": ...}, "headers": [{"Authorization": ...}]} was stored in clear."""
    privacy = Privacy(SECRET, store_personal_data=personal)
    sent = {name: json.dumps(value, ensure_ascii=False) for name, value in NESTED.items()}
    stored = {name: json.loads(text) for name, text in stored_extra(privacy, **sent).items()}
    assert "s3cret" not in str(stored) and "sk_live" not in str(stored) and "xyz" not in str(stored)
    assert stored["user"] == {"name": "Ann"} and stored["headers"] == [{}, {"Accept": "text/html"}]
    conn = stored["conn"]
    if personal:
        assert conn == NESTED["conn"]
    else:
        assert conn == {"client_ip": ip_pseudonym(privacy, "203.0.113.7"),
                        "via": [f"from {ip_pseudonym(privacy, '10.0.0.5')}"],
                        "mail": email_pseudonym(privacy, "joe@example.org")}


def test_json_text_nested_deeper_than_searched_is_not_kept_in_clear() -> None:
    deep: Any = {"password": "s3cret!"}
    for _ in range(40):
        deep = {"a": deep}
    sent = json.dumps(deep)
    assert PSEUDONYM.fullmatch(stored_extra(Privacy(SECRET), payload=sent)["payload"])
    assert "payload" not in stored_extra(Privacy(SECRET, store_personal_data=True), payload=sent)


def test_json_text_without_anything_to_hide_is_kept_as_sent(privacy: Privacy) -> None:
    sent = {"HTTP_CF_VISITOR": '{"scheme":"https"}', "tags": '["a",  "b"]', "bbcode": "[quote]hi[/quote]"}
    assert stored_extra(privacy, **sent) == sent
    # A name given twice parses as its last value: the text, holding both, is not kept as sent.
    assert stored_extra(privacy, a='{"b": {"c": "10.0.0.5", "c": "y"}}')["a"] == '{"b": {"c": "y"}}'


@pytest.mark.parametrize("name", ["POST_mot_de_passe", "POST_mot-de-passe", "POST_motdepasse",
                                  "POST__bbp_unfiltered_html_reply", "POST__bbp_unfiltered_html_topic",
                                  "POST__wp_unfiltered_html_comment"])
def test_credentials_named_with_separators_or_for_bbpress_are_dropped(privacy: Privacy, name: str) -> None:
    assert stored_extra(privacy, **{name: "s3cret"}) == {}


# --- 6. what carries no address ----------------------------------------------------------------

def test_forwarded_headers_that_carry_no_address_are_kept(privacy: Privacy) -> None:
    """Found by a probe: X-Forwarded-Proto, -Port and -Ssl were hashed for the FORWARDED in their
    names; only those that carry an address or a host are."""
    kept = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_PORT": "443", "HTTP_X_FORWARDED_SSL": "on",
            "X-Forwarded-Proto": "https"}
    hashed = {"HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.0.0.1", "HTTP_FORWARDED": "for=192.0.2.60;proto=http",
              "HTTP_X_FORWARDED_HOST": "joe-home.example", "HTTP_X_ORIGINAL_FORWARDED_FOR": "host-7.example",
              "X-Forwarded-For": "host-8.example"}
    stored = stored_extra(privacy, **kept, **hashed)
    assert {name: stored[name] for name in kept} == kept
    assert all(PSEUDONYM.fullmatch(stored[name]) for name in hashed)


# --- 7. names of credentials that forms and webhooks use ---------------------------------------

@pytest.mark.parametrize("name", [
    "POST_pin", "userPIN", "POST_pincode", "POST_2fa_code", "POST_mfa_code", "POST_cvv", "POST_cvv2", "POST_cvc",
    "POST_credit_card", "POST_card_number", "POST_cc_number", "ccnum", "POST_ssn", "POST_security_answer",
    "POST_security_code", "POST_g-recaptcha-response", "POST_h-captcha-response", "POST_cf-turnstile-response",
    "POST_signature", "HTTP_X_HUB_SIGNATURE", "HTTP_X_HUB_SIGNATURE_256", "HTTP_X_SHOPIFY_HMAC_SHA256",
    # A second probe of these rules: card codes, backup and one-time codes, spelled-out names.
    "POST_x_card_code", "cardCode", "POST_card_ccv", "POST_ccv", "POST_csc", "POST_card_cvn",
    "POST_two-factor-backup-code", "POST_backup_code", "POST_recovery_code", "googleotp", "POST_verification_code",
    "POST_sms_code", "POST_one_time_code", "POST_social_security_number", "POST_security_question_answer",
    "POST_iban", "POST_routing_number"])
def test_pins_second_factors_cards_captcha_answers_and_signatures_are_dropped(privacy: Privacy, name: str) -> None:
    """Found by a probe: these were stored as sent (otp and totp were dropped)."""
    assert stored_extra(privacy, **{name: "s3cret-1234"}) == {}


@pytest.mark.parametrize("name", [
    "POST_spinner", "POST_pinned", "POST_pinterest", "POST_opinion", "POST_pingback", "POST_shipping",
    "POST_spin", "POST_account_number", "POST_acc_number", "POST_discard", "POST_card", "POST_cc",
    "POST_access", "POST_success", "POST_security", "POST_design", "POST_assign", "POST_sign", "POST_topic",
    "POST_footprint", "POST_lebanon", "POST_libanese", "POST_routing", "POST_discount_code", "POST_zip_code",
    "POST_postcode", "POST_coupon_code", "POST_country_code", "POST_social_profile", "POST_code"])
def test_names_that_only_contain_those_words_are_kept(privacy: Privacy, name: str) -> None:
    assert stored_extra(privacy, **{name: "ordinary"}) == {name: "ordinary"}


# --- 8. a free text outside the comment: a report's reporter ------------------------------------

def test_a_reporters_addresses_are_hidden_where_they_stand(privacy: Privacy) -> None:
    """Found by a probe: the reporter (WordPress sends the moderator's user_login, often an
    e-mail) was stored in clear while the same row's extra fields were hashed."""
    stored = privacy.minimise_text("mod.erator@corp.example 203.0.113.11", 200)
    assert stored == with_pseudonyms(privacy, "{mail:mod.erator@corp.example} {203.0.113.11}")
    assert stored.endswith("@corp.example " + ip_pseudonym(privacy, "203.0.113.11"))
    assert privacy.minimise_text("mod-anna", 200) == "mod-anna"
    assert Privacy(SECRET, store_personal_data=True).minimise_text("mod2@corp.example", 200) == "mod2@corp.example"


def test_a_reporter_is_capped_after_hiding_and_no_pseudonym_is_cut(privacy: Privacy) -> None:
    # Cut before hiding at 200, the e-mail would be "mod@corp.exa..." no more and stay in clear.
    sent = "x" * 190 + " mod@corp.example"
    stored = privacy.minimise_text(sent, 200)
    assert "mod@" not in stored and "hmac:" not in stored and stored == "x" * 190 + " "
    # Hidden, an address may grow past the cap: it is left out whole, not cut in half.
    sent = "y" * 170 + " 2001:db8::7 and more"
    stored = privacy.minimise_text(sent, 200)
    assert stored == "y" * 170 + " " and "2001" not in stored
    fits = privacy.minimise_text("z" * 150 + " 2001:db8::7", 200)
    assert fits == "z" * 150 + " " + ip_pseudonym(privacy, "2001:db8::7")
    assert len(privacy.minimise_text("w" * 5000, 200)) == 200
