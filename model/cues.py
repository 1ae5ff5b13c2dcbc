"""Spam-intent cues: phrases that say what a comment wants from its readers.

Comment spam exists to move readers somewhere else: to a channel, a profile, a
shop or a phone number. These cues name that intent in a way that carries over
between sites and languages of spam, where the n-grams of one small training set
do not. Each cue becomes a metadata token ``cue=<name>`` and, through
:mod:`model.reasons`, a reason a moderator can read.
"""
from __future__ import annotations

import re

_OWN = r"(?:my|our|mine)\s+(?:new\s+|own\s+|latest\s+|first\s+|official\s+|little\s+|youtube\s+|yt\s+)*"
CUES: dict[str, re.Pattern[str]] = {
    # "check out my channel", "listen to our new track", "visit my page"
    "self_promotion": re.compile(
        rf"\b{_OWN}(?:channel|chanel|vids?|videos?|songs?|tracks?|music|mixtape|beats?|page|blog|site|"
        r"website|profile|account|insta(?:gram)?|twitter|tiktok|playlist|stream|covers?|album|ep|band|"
        r"shop|store|app|game|podcast|group|fan\s?page)\b",
        re.IGNORECASE,
    ),
    "asks_to_subscribe": re.compile(
        r"\b(?:sub(?:scribe)?s?\s*(?:4|for|to)\s*sub|subscribe\s+(?:to\s+)?(?:me|my|us|our)|please\s+(?:subscribe|sub)\b|"
        r"(?:follow|add)\s+me\b|follow\s+(?:us|my)\b|sub\s+to\s+(?:me|my))",
        re.IGNORECASE,
    ),
    "asks_to_visit": re.compile(
        r"\b(?:check\s*(?:it\s+)?out|visit|go\s+to|click\s+(?:here|on|the|this|my)|look\s+at|listen\s+to|"
        r"watch|search(?:\s+for)?|join|download)\s+(?:my|our|this\s+(?:link|site|page|channel)|xxurl|me\b)",
        re.IGNORECASE,
    ),
    "asks_for_likes": re.compile(
        r"\b(?:like|thumbs?\s*up|share)\s+(?:this|my|the)\s+(?:comment|post|page|video)|"
        r"\b(?:like|thumb)\s+(?:this\s+)?so\s+(?:more\s+)?(?:people|everyone|others)\b|give\s+(?:me\s+)?a\s+chance",
        re.IGNORECASE,
    ),
    "money_offer": re.compile(
        r"\b(?:free\s+(?:gift\s*cards?|money|iphones?|cash|robux|v-?bucks|followers|likes|subscribers|coins?|"
        r"trial)|earn(?:ing|ed)?\s+(?:up\s+to\s+)?[$£€]?\d|make\s+(?:real\s+)?money|(?:per|a|every)\s+(?:day|week|month|hour)\s+"
        r"(?:from|at|working)\s+home|work(?:ing)?\s+from\s+home|paypal\s+money|bonus\s+code|promo\s+code)",
        re.IGNORECASE,
    ),
    "social_handle": re.compile(
        r"\b(?:ig|insta|instagram|twitter|snapchat|snap|kik|telegram|whatsapp|skype|tiktok|fb)"
        r"(?:\s+(?:name|handle|id|username))?\s*(?:[:\-@]|is|at)\s*@?\w{3,}",
        re.IGNORECASE,
    ),
    # "Txt CHAT to 86688", "reply WIN to 80082": premium short-code replies
    "text_to_short_code": re.compile(
        r"\b(?:txt|text|sms|send|reply|call|ring|dial)\b[^.!?\n]{0,40}?(?<![\d.])\d{4,6}(?!\d|\.\d)",
        re.IGNORECASE,
    ),
    "premium_rate": re.compile(
        r"\b\d+(?:\.\d+)?\s?p\s?(?:/|per\s)\s?(?:msg|min|minute|text|sms|call|wk|week)|"
        r"[£$€]\s?\d+(?:\.\d\d)?\s?(?:/|per\s)\s?(?:msg|min|text|sms|call|wk|week)|\b\d{2,3}p\s?(?:msg|min)\b",
        re.IGNORECASE,
    ),
    "prize_claim": re.compile(
        r"\b(?:you(?:'ve|\s+have)?\s+(?:won|been\s+(?:selected|chosen))|winner|claim\s+(?:your|a|the|now)|"
        r"guaranteed\s+(?:prize|cash|win)|cash\s+prize|prize\s+(?:draw|claim)|congratulations?\s*!*\s*you)",
        re.IGNORECASE,
    ),
    # "reply HARRY", "txt back NAME and AGE", "send STOP": a keyword in capitals to send back,
    # the way bulk senders route replies. The keyword alone is case-sensitive.
    "reply_with_keyword": re.compile(
        r"\b(?i:reply|txt|text|send|sms)(?:\s+(?i:back|with|the\s+word))*\s+[\"'“]?"
        r"(?!(?:ME|US|IT|THE|TO|MY|YOU|YOUR|HIM|HER|THEM|IN|ON|AND|OF|SOME|THIS|THAT|ALL|IS|AN|OK|LOVE)\b)"
        r"[A-Z][A-Z0-9#]{1,}\b"
    ),
    "opt_out": re.compile(
        r"\b(?:unsubscribe|opt[\s-]?(?:out|in)|(?:send|reply|txt|text)\s+stop|stop\s+to\s+\d{3,}|to\s+stop\s+(?:receiving|these|messages|texts))\b",
        re.IGNORECASE,
    ),
}


#: Lower-case words of which every match of a cue contains at least one. Testing
#: for them with ``in`` is far cheaper than running each pattern over every
#: comment; tests/test_features.py checks on the seed corpus that the shortcut
#: never changes a result.
_DIGITS = tuple("0123456789")
CUE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "self_promotion": ("my", "our", "mine"),
    "asks_to_subscribe": ("sub", "follow", "add"),
    "asks_to_visit": ("check", "visit", "go", "click", "look", "listen", "watch", "search", "join", "download"),
    "asks_for_likes": ("like", "thumb", "share", "chance"),
    "money_offer": ("free", "earn", "money", "home", "code"),
    "social_handle": ("ig", "insta", "twitter", "snap", "kik", "telegram", "whatsapp", "skype", "tiktok", "fb"),
    "text_to_short_code": ("txt", "text", "sms", "send", "reply", "call", "ring", "dial"),
    "premium_rate": _DIGITS,
    "prize_claim": ("you", "winner", "claim", "guaranteed", "prize", "congratulation"),
    "reply_with_keyword": ("reply", "txt", "text", "send", "sms"),
    "opt_out": ("unsubscribe", "opt", "stop"),
}


#: Every keyword once, and each cue's keywords as a set: one pass of ``in`` tests per comment.
_ALL_KEYWORDS: tuple[str, ...] = tuple(sorted({w for words in CUE_KEYWORDS.values() for w in words}))
_KEYWORD_SETS: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = tuple(
    (name, pattern, frozenset(CUE_KEYWORDS[name])) for name, pattern in CUES.items())


def find_cues(text: str) -> list[str]:
    """Names of the cues present in a normalised text."""
    low = text.lower()
    present = {word for word in _ALL_KEYWORDS if word in low}
    if not present:
        return []
    return [name for name, pattern, words in _KEYWORD_SETS
            if not words.isdisjoint(present) and pattern.search(text)]


def find_cues_exhaustively(text: str) -> list[str]:
    """:func:`find_cues` without the keyword shortcut (the reference the tests compare with)."""
    return [name for name, pattern in CUES.items() if pattern.search(text)]


#: What each cue means, as a reason a moderator reads.
CUE_DESCRIPTIONS: dict[str, str] = {
    "self_promotion": "promotes the commenter's own channel, page or site",
    "asks_to_subscribe": "asks readers to subscribe or follow",
    "asks_to_visit": "asks readers to visit or check out something",
    "asks_for_likes": "asks for likes or shares",
    "money_offer": "offers money, free gifts or earnings",
    "social_handle": "gives a social-media handle to contact",
    "text_to_short_code": "asks to text or call a short code",
    "premium_rate": "mentions premium-rate charges",
    "prize_claim": "claims the reader has won a prize",
    "reply_with_keyword": "asks to reply with a keyword in capitals",
    "opt_out": "tells how to opt out of further messages",
}
