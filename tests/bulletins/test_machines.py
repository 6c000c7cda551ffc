import pytest

from bulletins.machines import MachineRules, machine_reason

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


def verdict(**overrides):
    arguments = {
        "method": "GET",
        "user_agent": BROWSER,
        "seconds_since_sent": 3600.0,
        "recent_hits": 0,
        "rules": MachineRules(),
    }
    return machine_reason(**{**arguments, **overrides})


def test_a_browser_an_hour_after_sending_is_a_person():
    assert verdict().is_human


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Barracuda Sentinel)",
        "Mimecast-URL-Protect/1.0",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)",
        "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0",
        "python-requests/2.32",
        "curl/8.5.0",
        "Googlebot/2.1",
        "",
        "   ",
    ],
)
def test_scanners_preview_agents_libraries_and_empty_agents_are_machines(agent):
    assert not verdict(user_agent=agent).is_human


def test_head_requests_are_machines():
    assert verdict(method="HEAD").reason == "HEAD request"


def test_a_click_seconds_after_sending_is_a_machine():
    assert not verdict(seconds_since_sent=3.0).is_human
    assert verdict(seconds_since_sent=11.0).is_human
    assert verdict(seconds_since_sent=None).is_human  # not sent yet: nothing to compare


def test_the_third_hit_on_one_email_within_two_seconds_is_a_burst():
    assert verdict(recent_hits=1).is_human
    third = verdict(recent_hits=2)
    assert not third.is_human and third.burst


def test_rules_are_configurable():
    rules = MachineRules(too_soon_seconds=0, burst_hits=5)
    assert verdict(seconds_since_sent=1.0, recent_hits=3, rules=rules).is_human
