"""Telling machine clicks and opens from people's (pure: no Django).

Security gateways and mail providers open links to scan them before the reader sees the
email; counting those as clicks inflates CTR and hands conversions to the wrong email. A hit
is taken for a machine when:

- it is a `HEAD` request (scanners probe; browsers follow links with GET);
- its user agent names a known link scanner, a preview fetcher or an HTTP library, or is empty;
- it comes within `too_soon_seconds` of the email being sent (nobody reads that fast);
- it is part of a burst: `burst_hits` or more hits on one email within `burst_seconds`
  (a scanner follows every link of a message at once, often from several addresses).

The hit is still recorded, with the reason, and left out of the reports.
"""

import re
from dataclasses import dataclass

SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|messagelabs|symantec|trendmicro|forcepoint|zscaler|"
    r"fortinet|sophos|cisco|ironport|safelinks|microsoft office|ms-office|bingpreview|"
    r"linkscanner|urlscan|virustotal|google-read-aloud|googleimageproxy|yahoomailproxy|"
    r"headlesschrome|phantomjs|python-requests|python-urllib|aiohttp|curl/|wget/|go-http|"
    r"okhttp|java/|libwww|httpclient|bot\b|crawler|spider|slurp|preview",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Verdict:
    reason: str = ""  # why it looks like a machine; empty for a person
    burst: bool = False  # the hits before it in the burst are machines too

    @property
    def is_human(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class MachineRules:
    too_soon_seconds: float = 10.0
    burst_hits: int = 3
    burst_seconds: float = 2.0


def machine_reason(
    *,
    method: str,
    user_agent: str,
    seconds_since_sent: float | None,
    recent_hits: int,
    rules: MachineRules = MachineRules(),
) -> Verdict:
    """Whether this hit looks like a machine, and why. `recent_hits`: other hits on the same
    email within `rules.burst_seconds` before this one."""
    if method.upper() == "HEAD":
        return Verdict("HEAD request")
    agent = user_agent.strip()
    if not agent:
        return Verdict("no user agent")
    if SCANNER_AGENTS.search(agent):
        return Verdict("link scanner or preview agent")
    if seconds_since_sent is not None and 0 <= seconds_since_sent < rules.too_soon_seconds:
        return Verdict(f"within {rules.too_soon_seconds:g} s of sending")
    if recent_hits + 1 >= rules.burst_hits:
        hits = recent_hits + 1
        return Verdict(f"{hits} hits on one email within {rules.burst_seconds:g} s", burst=True)
    return Verdict()
