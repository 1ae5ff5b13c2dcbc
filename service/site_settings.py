"""A check's verdict settings: the key's site's own (``commentguard sites set``), else the
global settings (``COMMENTGUARD_MODE``, ``COMMENTGUARD_THRESHOLD_*``), else the model's thresholds.

A site's settings arrive with its key's authentication (:class:`store.KeyInfo`, cached by
:class:`service.auth.KeyCache`), so applying them costs no query. What they resolve to is
memoised per worker by (site, its settings, the global thresholds, the model's thresholds):
a check of a known combination does one dict lookup and allocates nothing.

A site whose thresholds, combined with the global overrides and the model's, are out of order
(possible after a model with other thresholds is activated) does not fail its checks: it gets
the global thresholds (its mode, valid on its own, still applies), and a WARNING names the
site id once per worker and combination.
Anonymous JSON calls (no key) always get the global settings.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

from model.verdict import Thresholds
from service.settings import LOG_ONLY, Settings
from store import KeyInfo, SiteSettings

if TYPE_CHECKING:
    from model.scorer import Scorer
    from service.app import ServiceState

log = logging.getLogger(__name__)

#: Resolved combinations remembered per worker before the memo is emptied (sites x models).
MEMO_SIZE = 1024


@dataclass(frozen=True)
class VerdictSettings:
    """What one check is answered with.

    ``score_thresholds`` is what to pass to ``Scorer.score`` (``None``: the model's own);
    ``thresholds`` the cut-offs in force (for the fixed rules and the upstream cross-check);
    ``log_only`` whether every answer is ham on the wire; ``out_of_order`` that the site's own
    thresholds, with the global overrides and the model's, are out of order, so these are the global ones.
    """

    score_thresholds: Optional[Thresholds]
    thresholds: Thresholds
    log_only: bool
    out_of_order: bool = False


def merged_thresholds(site: SiteSettings, settings: Settings, model: Thresholds) -> Thresholds:
    """Per tier, the site's threshold, else the global override, else the model's; ValueError
    when the result is out of order (0 <= unsure <= spam <= discard <= 1)."""
    glob = {"unsure": settings.threshold_unsure, "spam": settings.threshold_spam,
            "discard": settings.threshold_discard}
    merged = {}
    for tier, value in site.thresholds().items():
        if value is None:
            value = glob[tier]
        merged[tier] = value if value is not None else getattr(model, tier)
    return Thresholds(**merged)


def site_log_only(settings: Settings, key: Optional[KeyInfo]) -> bool:
    """Whether checks by ``key``'s site are answered in log-only mode (the feedback path judges a
    report by the mode in force when it arrives, and needs no model for that)."""
    return _log_only(key.site_settings if key is not None else None, settings)


def _log_only(site: Optional[SiteSettings], settings: Settings) -> bool:
    """The site's own mode, else the global one."""
    mode = site.mode if site is not None else None
    return (mode == LOG_ONLY) if mode is not None else settings.log_only


def verdict_settings(state: "ServiceState", key: Optional[KeyInfo], scorer: "Scorer") -> VerdictSettings:
    """The settings a check by ``key`` (``None``: anonymous) is answered with, under ``scorer``."""
    site = key.site_settings if key is not None else None
    site_id = key.site_id if key is not None and not site.is_default else None  # type: ignore[union-attr]
    global_thresholds = state.thresholds
    memo_key = (site_id, site if site_id is not None else None, global_thresholds, scorer.thresholds)
    memo = state.verdict_memo
    found = memo.get(memo_key)
    if found is not None:
        return found
    found = resolve_verdict_settings(state.settings, site if site_id is not None else None,
                                     global_thresholds, scorer.thresholds)
    if found.out_of_order:
        # The site's thresholds were checked when set, against the model then active; a model
        # activated since may have moved the rest. Checks go on, with the global settings.
        log.warning("site %d: its thresholds %s, with the global overrides and the model's thresholds %s, are "
                    "out of order; its checks use the global thresholds (and its own mode) until "
                    "`commentguard sites set` mends them",
                    site_id, {k: v for k, v in site.thresholds().items() if v is not None},  # type: ignore[union-attr]
                    scorer.thresholds.to_dict())
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[memo_key] = found
    return found


def resolve_verdict_settings(settings: Settings, site: Optional[SiteSettings],
                             global_thresholds: Optional[Thresholds], model: Thresholds) -> VerdictSettings:
    """What a check by ``site`` (``None``: no key, or a site with no settings of its own) is answered
    with, given the global threshold overrides (``None``: none) and the model's thresholds."""
    if site is None:
        return VerdictSettings(global_thresholds, global_thresholds or model, settings.log_only)
    log_only = _log_only(site, settings)
    # The global thresholds, with the site's mode: a site tried in log-only mode must not start
    # enforcing because a new model moved its thresholds out of order.
    fallback = VerdictSettings(global_thresholds, global_thresholds or model, log_only)
    if not site.has_thresholds:
        return fallback
    try:
        thresholds = merged_thresholds(site, settings, model)
    except ValueError:
        return replace(fallback, out_of_order=True)
    return VerdictSettings(thresholds, thresholds, log_only)


__all__ = ["MEMO_SIZE", "VerdictSettings", "merged_thresholds", "resolve_verdict_settings", "site_log_only",
           "verdict_settings"]
