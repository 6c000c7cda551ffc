import datetime as dt
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bulletins.models import (
    Bulletin,
    BulletinBlock,
    BulletinRun,
    Delivery,
    PlatformConnection,
    Unsubscribe,
    Variant,
)
from bulletins.services.runs import (
    BulletinNotReady,
    bulletin_dry_run,
    bulletin_run_in_process,
    bulletin_run_start,
    bulletin_shard_prepare,
    bulletin_shard_send,
    deliveries_claim,
    run_shards,
)
from bulletins.tasks import bulletin_send_task
from integrations.platforms import RETRYABLE, SENT, PlatformAdapter, SendResult
from recommendations.models import EndUser, Item, Placement, Rule
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db


def send(bulletin, **kwargs):
    run, _ = bulletin_run_start(bulletin=bulletin, **kwargs)
    return bulletin_run_in_process(run=run, wait_for_retries=False)


def eligible_users():
    return EndUser.objects.filter(is_anonymous=False, email_opt_in=True).exclude(email="")


class ScriptedAdapter(PlatformAdapter):
    """A platform that answers what the test says, and remembers every message it took."""

    name = "scripted"
    max_batch = 50

    def __init__(self, answer=None):
        super().__init__()
        self.answer = answer or (lambda message: SENT)
        self.received = []

    def send_batch(self, batch):
        results = []
        for message in batch:
            status = self.answer(message)
            if status == SENT:
                self.received.append(message)
            results.append(
                SendResult(message.recipient_id, status, message_id=f"m-{message.idempotency_key}")
            )
        return results


def test_run_sends_every_opted_in_user_exactly_once(weekly, mailbox):
    run = send(weekly)

    expected = set(eligible_users().values_list("email", flat=True))
    assert run.status == BulletinRun.Status.DONE
    assert sorted(message.to[0] for message in mailbox) == sorted(expected)
    assert run.sent == run.deliveries == len(expected)
    known = EndUser.objects.filter(is_anonymous=False)
    assert run.skipped_not_opted_in == known.filter(email_opt_in=False).count() > 0
    assert run.audience == run.sent + run.skipped
    delivery = Delivery.objects.filter(run=run).first()
    assert [entry["position"] for entry in delivery.items] == list(range(1, 8))
    assert Counter(entry["block"] for entry in delivery.items) == {1: 4, 2: 3}
    assert {entry["source"] for entry in delivery.items} == {"inhouse", "trending"}
    assert len({entry["item_id"] for entry in delivery.items}) == 7  # no item twice
    assert delivery.message_id == f"<{delivery.pk}.recsite@example.com>"


def test_rerun_does_not_send_twice(weekly, mailbox):
    first = send(weekly, run_key="2026-11-27")
    sent = len(mailbox)
    again = send(weekly, run_key="2026-11-27")  # the same tick delivered twice
    resumed = bulletin_run_in_process(run=first)  # the same run resumed

    assert again.pk == first.pk == resumed.pk
    assert len(mailbox) == sent
    assert Delivery.objects.filter(run=first).count() == sent


def test_prepare_twice_writes_each_delivery_once(weekly, mailbox):
    run, _ = bulletin_run_start(bulletin=weekly, shard_users=100)
    for shard in run_shards(run) + run_shards(run):
        bulletin_shard_prepare(run_id=run.pk, shard=shard)

    run.refresh_from_db()
    users = list(Delivery.objects.filter(run=run).values_list("user_id", flat=True))
    assert len(users) == len(set(users)) == eligible_users().count()
    assert run.shards == 3 and len(run.prepared_shards) == 3
    assert (
        run.skipped_not_opted_in
        == EndUser.objects.filter(email_opt_in=False, is_anonymous=False).count()
    )


def test_opted_out_unsubscribed_and_addressless_users_are_skipped_and_counted(weekly, mailbox):
    users = list(eligible_users().order_by("pk")[:3])
    Unsubscribe.objects.create(user=users[0], bulletin=weekly)
    Unsubscribe.objects.create(user=users[1], bulletin=None)  # from every bulletin
    EndUser.objects.filter(pk=users[2].pk).update(email="")

    run = send(weekly)

    received = {message.to[0] for message in mailbox}
    assert not received & {users[0].email, users[1].email}
    assert run.skipped_unsubscribed == 2
    assert run.skipped_no_email == 1
    assert not Delivery.objects.filter(run=run, user__in=users).exists()


def test_unsubscribed_after_preparing_is_cancelled_not_sent(weekly, mailbox):
    run, _ = bulletin_run_start(bulletin=weekly)
    for shard in run_shards(run):
        bulletin_shard_prepare(run_id=run.pk, shard=shard)
    delivery = Delivery.objects.filter(run=run).first()
    Unsubscribe.objects.create(user=delivery.user, bulletin=weekly)

    run = bulletin_run_in_process(run=run)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED
    assert delivery.email not in {message.to[0] for message in mailbox}
    assert run.cancelled == 1 and run.status == BulletinRun.Status.DONE


def test_user_without_stored_list_gets_the_placement_fallback(weekly, mailbox):
    newcomer = EndUserFactory(external_id="newcomer", email="new@example.com")

    run = send(weekly)

    delivery = Delivery.objects.get(run=run, user=newcomer)
    assert delivery.used_fallback
    assert len(delivery.items) == 7
    assert run.fallback >= 1
    assert "new@example.com" in {message.to[0] for message in mailbox}


def test_user_with_no_item_anywhere_is_skipped_and_counted(weekly, mailbox):
    # A block ranking one withdrawn item, with no fallback: nothing to show anyone.
    item = Item.objects.first()
    Item.objects.filter(pk=item.pk).update(available=False)
    only = Placement.objects.create(
        slug="one-item",
        name="One item",
        strategy="ranking",
        item_list=[item.external_id],
        fallback_order="",
    )
    weekly.blocks.all().delete()
    BulletinBlock.objects.create(bulletin=weekly, title="Just this", placement=only, count=1)

    run = send(weekly)

    assert run.skipped_no_items == eligible_users().count()
    assert run.status == BulletinRun.Status.DONE
    assert not Delivery.objects.exists() and not mailbox


def test_worker_dying_after_claiming_loses_no_one(weekly, mailbox, settings):
    run, _ = bulletin_run_start(bulletin=weekly)
    shard = run_shards(run)[0]
    bulletin_shard_prepare(run_id=run.pk, shard=shard)
    # A worker claims a batch and dies before pushing: the rows stay "being sent".
    claimed = deliveries_claim(run_id=run.pk, shard=shard, limit=10)
    assert len(claimed) == 10

    # Within the lease nobody else takes them ...
    bulletin_shard_send(run_id=run.pk, shard=shard)
    in_doubt = Delivery.objects.filter(pk__in=[d.pk for d in claimed])
    assert set(in_doubt.values_list("status", flat=True)) == {Delivery.Status.SENDING}
    # ... after it, a resume sends them with the same Message-ID as the first attempt would.
    in_doubt.update(
        claimed_at=timezone.now() - dt.timedelta(seconds=settings.BULLETIN_CLAIM_LEASE_SECONDS + 1)
    )
    run = bulletin_run_in_process(run=run)

    assert run.status == BulletinRun.Status.DONE
    assert set(in_doubt.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert set(in_doubt.values_list("attempts", flat=True)) == {2}
    recipients = [message.to[0] for message in mailbox]
    assert len(recipients) == len(set(recipients)) == eligible_users().count()
    ids = {message.extra_headers["Message-ID"] for message in mailbox}
    assert {f"<{d.pk}.recsite@example.com>" for d in claimed} <= ids


def test_partial_failure_retries_only_the_failed_recipients(weekly, settings):
    settings.BULLETIN_RETRY_SECONDS = 3600
    flaky = set(eligible_users().values_list("external_id", flat=True)[:5])
    calls = Counter()

    def answer(message):
        calls[message.recipient_id] += 1
        first_try = calls[message.recipient_id] == 1
        return RETRYABLE if message.recipient_id in flaky and first_try else SENT

    adapter = ScriptedAdapter(answer)
    run, _ = bulletin_run_start(bulletin=weekly)
    shard = run_shards(run)[0]
    bulletin_shard_prepare(run_id=run.pk, shard=shard)
    first = bulletin_shard_send(run_id=run.pk, shard=shard, adapter=adapter)
    assert first.retryable == 5
    assert bulletin_shard_send(run_id=run.pk, shard=shard, adapter=adapter).sent == 0  # not yet
    Delivery.objects.filter(status=Delivery.Status.RETRYABLE).update(
        claimed_at=timezone.now() - dt.timedelta(hours=2)
    )

    second = bulletin_shard_send(run_id=run.pk, shard=shard, adapter=adapter)

    assert second.sent == 5  # only the five that failed went again
    assert {calls[user] for user in flaky} == {2}
    assert Counter(calls.values())[1] == eligible_users().count() - 5
    assert len(adapter.received) == eligible_users().count()
    assert not Delivery.objects.exclude(status=Delivery.Status.SENT).exists()


def test_retryable_failures_give_up_after_the_attempt_limit(weekly, settings):
    settings.BULLETIN_RETRY_SECONDS = 0
    settings.BULLETIN_MAX_ATTEMPTS = 3
    adapter = ScriptedAdapter(lambda message: RETRYABLE)
    run, _ = bulletin_run_start(bulletin=weekly)
    shard = run_shards(run)[0]
    bulletin_shard_prepare(run_id=run.pk, shard=shard)
    for _ in range(5):
        bulletin_shard_send(run_id=run.pk, shard=shard, adapter=adapter)

    statuses = set(Delivery.objects.filter(run=run).values_list("status", flat=True))
    assert statuses == {Delivery.Status.FAILED}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {3}
    assert Delivery.objects.first().error.startswith("gave up after 3 attempts")


def test_variants_split_the_audience_stably_and_choose_the_source(weekly, mailbox):
    Variant.objects.create(
        bulletin=weekly, name="model", share=70, source="inhouse", is_control=True
    )
    Variant.objects.create(
        bulletin=weekly,
        name="holdout",
        share=30,
        source="trending",
        subject_template="Popular this week",
    )

    first = send(weekly)
    second = send(weekly)

    arms = dict(Delivery.objects.filter(run=first).values_list("user_id", "variant__name"))
    assert arms == dict(Delivery.objects.filter(run=second).values_list("user_id", "variant__name"))
    share = Counter(arms.values())["holdout"] / len(arms)
    assert 0.2 < share < 0.4
    for delivery in Delivery.objects.filter(run=first, variant__name="holdout"):
        assert {entry["source"] for entry in delivery.items} == {"trending"}
    holdout_subjects = {m.subject for m in mailbox if m.subject == "Popular this week"}
    assert holdout_subjects


def test_shares_that_do_not_add_up_stop_the_run(weekly):
    Variant.objects.create(bulletin=weekly, name="a", share=60)
    Variant.objects.create(bulletin=weekly, name="b", share=30)

    with pytest.raises(BulletinNotReady, match="add up to 90"):
        bulletin_run_start(bulletin=weekly)


def test_exclude_recently_sent_rule_keeps_last_emails_items_out(weekly, mailbox):
    placement = weekly.blocks.get(position=1).placement
    Rule.objects.create(placement=placement, name="fresh", kind="exclude_recently_sent", days=1)

    first = send(weekly)
    second = send(weekly)

    for delivery in Delivery.objects.filter(run=second).select_related("user")[:50]:
        before = Delivery.objects.get(run=first, user=delivery.user)
        picked = {e["item_id"] for e in delivery.items if e["block"] == 1}
        assert not picked & {e["item_id"] for e in before.items}


def _block_items(delivery, block: int) -> set[str]:
    return {e["item_id"] for e in delivery.items if e["block"] == block}


def test_by_default_the_next_email_does_not_repeat_the_last_ones_items(weekly, mailbox):
    """A weekly newsletter: last week's picks are not this week's (each block on its own)."""
    first = send(weekly)
    second = send(weekly)

    compared = 0
    for delivery in Delivery.objects.filter(run=second).select_related("user"):
        before = Delivery.objects.get(run=first, user=delivery.user)
        for block in (1, 2):
            assert not _block_items(delivery, block) & _block_items(before, block)
        compared += 1
    assert compared > 100


def test_a_block_set_to_skip_nothing_may_repeat_the_last_emails_items(weekly, mailbox):
    weekly.blocks.update(skip_sent_in_last=0)
    first = send(weekly)
    second = send(weekly)

    repeated = sum(
        bool(_block_items(delivery, 1) & _block_items(before, 1))
        for delivery, before in (
            (d, Delivery.objects.get(run=first, user=d.user))
            for d in Delivery.objects.filter(run=second).select_related("user")
        )
    )
    assert repeated > 0


def test_render_failure_fails_the_delivery_with_its_reason(weekly, mailbox):
    weekly.layout_mjml = "<mjml><mj-body><mj-raw>" + "x" * 120_000 + "</mj-raw></mj-body></mjml>"
    weekly.save()

    run = send(weekly)

    assert run.sent == 0 and run.failed == run.deliveries > 0
    assert "Gmail clips" in Delivery.objects.first().error
    assert not mailbox


def test_dry_run_renders_everyone_and_writes_nothing(weekly, mailbox):
    report = bulletin_dry_run(bulletin=weekly)

    assert report.recipients == eligible_users().count()
    assert report.skipped_not_opted_in > 0
    assert 10_000 < report.largest_bytes < 102 * 1024
    assert not report.render_errors
    assert not BulletinRun.objects.exists() and not Delivery.objects.exists() and not mailbox


def test_send_bulletin_command(weekly, mailbox, capsys):
    call_command("send_bulletin", "weekly", "--dry-run", verbosity=0)
    assert "nothing sent" in capsys.readouterr().out and not mailbox

    call_command("send_bulletin", "weekly", "--run-key", "k1", verbosity=0)
    out = capsys.readouterr().out
    assert f"sent {eligible_users().count()}" in out
    call_command("send_bulletin", "weekly", "--run-key", "k1", verbosity=0)
    assert "already exists" in capsys.readouterr().out
    assert len(mailbox) == eligible_users().count()


def test_send_bulletin_command_names_what_is_wrong(weekly, monkeypatch):
    with pytest.raises(CommandError, match="no bulletin 'nope' \\(known: weekly\\)"):
        call_command("send_bulletin", "nope")
    weekly.platform = PlatformConnection.objects.create(
        name="SendGrid", kind="sendgrid", options={"from_email": "a@b.c"}, credential_env="SG_KEY"
    )
    weekly.save()
    monkeypatch.delenv("SG_KEY", raising=False)
    with pytest.raises(CommandError, match="SG_KEY"):
        call_command("send_bulletin", "weekly", verbosity=0)
    assert not Delivery.objects.filter(status=Delivery.Status.SENT).exists()


def test_a_bulletin_without_blocks_cannot_start(db):
    bulletin = Bulletin.objects.create(slug="empty", name="Empty", subject_template="x")
    with pytest.raises(BulletinNotReady, match="no recommendation block"):
        bulletin_run_start(bulletin=bulletin)


def test_an_eager_run_left_with_retryable_deliveries_waits_instead_of_looping(
    weekly, smtp_server, settings
):
    settings.EMAIL_PLATFORM = {"name": "smtp"}
    for user in eligible_users():  # the SMTP server answers 450 to these addresses
        EndUser.objects.filter(pk=user.pk).update(email=f"soft-{user.pk}@example.com")

    bulletin_send_task.delay(weekly.pk, "admin")

    run = BulletinRun.objects.get()
    assert run.status == BulletinRun.Status.SENDING
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.RETRYABLE}
