"""The thresholds ``checks summary`` re-tiers stored scores with, per site.

By default each site's effective thresholds now, resolved as the workers resolve them
(:func:`service.site_settings.resolve_verdict_settings`: the site's own, else ``COMMENTGUARD_THRESHOLD_*``,
else the served model's; a site whose thresholds that puts out of order gets the global ones, as
its checks do). Thresholds given on the command line replace those tiers for every site, and the
result must keep ``unsure <= spam <= discard`` for each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import click

from commentguard.context import ModelUnreadable, served_thresholds
from model.verdict import Thresholds
from service.settings import Settings, SettingsError
from service.site_settings import resolve_verdict_settings
from store import SiteInfo


@dataclass(frozen=True)
class ThresholdsChoice:
    """Per site id the what-if thresholds (``None`` key: checks without a key, and any other site);
    ``thresholds`` is None, with the reason in ``unavailable``, when they cannot be known."""

    thresholds: Optional[Mapping[Optional[int], Thresholds]]
    source: str
    unavailable: Optional[str] = None

    def for_site(self, site_id: Optional[int]) -> Optional[Thresholds]:
        if self.thresholds is None:
            return None
        return self.thresholds.get(site_id, self.thresholds.get(None))


def _options(given: Mapping[str, float]) -> str:
    return ", ".join(f"--threshold-{tier} {value:g}" for tier, value in given.items())


def choose_thresholds(settings: Settings, sites: Sequence[SiteInfo], given: Mapping[str, float], *,
                      include_global: bool = True) -> ThresholdsChoice:
    """The what-if thresholds for ``sites`` (and, with ``include_global``, for checks without a key)
    with the tiers ``given`` on the command line (already checked to lie in 0..1);
    :class:`click.UsageError` when they put a site's out of order."""
    values = list(given.values())  # in tier order
    if values != sorted(values):
        raise click.UsageError(f"{_options(given)}: the thresholds must keep unsure <= spam <= discard")
    if len(given) == 3:
        return ThresholdsChoice({None: Thresholds(**given)}, "given on the command line")
    try:
        model, _ = served_thresholds(settings)
    except ModelUnreadable as exc:
        path, cause = exc.args
        return ThresholdsChoice(None, "", f"the served model's thresholds cannot be read at {path} ({cause}); "
                                          "give all three --threshold-* options")
    try:
        glob = settings.thresholds_for(model)
    except SettingsError as exc:
        return ThresholdsChoice(None, "", str(exc))
    chosen: dict[Optional[int], Thresholds] = {}
    for site in [*sites, *([None] if include_global else [])]:
        # As the workers resolve them (the global ones for a site whose thresholds fell out of order).
        effective = (glob if site is None
                     else resolve_verdict_settings(settings, site.settings, glob, model).thresholds)
        try:
            chosen[site.id if site is not None else None] = Thresholds(**{**effective.to_dict(), **given})
        except ValueError:
            where = f"the site {site.url}'s thresholds" if site is not None else "the global thresholds"
            raise click.UsageError(
                f"{_options(given)} in place of {where} {effective.to_dict()} would not keep "
                "unsure <= spam <= discard; give the others too") from None
    source = "each site's own, else COMMENTGUARD_THRESHOLD_*, else the served model's"
    return ThresholdsChoice(chosen, f"{_options(given)}; the other tiers {source}" if given else source)


__all__ = ["ThresholdsChoice", "choose_thresholds"]
