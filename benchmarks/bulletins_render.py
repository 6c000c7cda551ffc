"""Bulletin rendering and push: 100k personalised emails with tracked links on every core, then
a sample pushed through a local fake platform at its rate limit.

Rendering: a synthetic catalogue (5,000 items; titles with `&`, quotes, apostrophes and accents;
descriptions of varied length; some items without an image or a description) and 100,000
users, each with two blocks of six items drawn for them by popularity and a first name (some
empty, some accented). `bulletin_render` renders every email, tracked links and all, in a
process pool with one worker per core, in chunks of 1,000 users; then half of them again with
the layout rendered by Django for each user. For reference the same run times one process with
every email's MJML compiled (skeletons off) and one with skeletons on, and renders the last
1,000 users both ways to compare them. Target: 2,000 emails/s on 2 cores.

Push: a fake platform in its own process on 127.0.0.1 takes signed webhook batches of at most
1,000 messages, at most `--rate` requests/s (a token bucket holding one second of requests;
above it 429 with a whole-second Retry-After), and records every message's idempotency key.
`--senders` threads push the first `--push` rendered emails through `WebhookAdapter` in batches
of `--batch`, each its own share, and send again what comes back retryable, as a run's send
tasks do: once with no limit, to show what this machine can push, then at the limit. An email
is about 40 KB, so JSON and HMAC over the bodies bound the push at some 1,500 messages/s on 2
cores; the default limit (10 requests/s of 100) sits below that, so that the limit binds.

    python benchmarks/bulletins_render.py [--users 100000] [--items 5000] [--push 20000]
        [--rate 10] [--batch 100] [--senders 4] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SEED = 7
CHUNK = 1000
SPOT_CHECK = 1000  # last users, rendered with skeletons and compiled, compared
TARGET = 2000  # emails/s on 2 cores
ITEMS_PER_BLOCK = 6
EMPTY_NAME_SHARE, NO_IMAGE_SHARE, NO_DESCRIPTION_SHARE = 0.08, 0.04, 0.02
SUBJECT = '{{ user.first_name|default:"there" }}, your picks for this week'
SECRET = "bench-webhook-secret"
MAX_PLATFORM_BATCH = 1000
PUBLIC_BASE_URL = "https://news.example.com"

ADJECTIVES = (
    "Quick Easy Classic Rustic Smoky Spicy Golden Crispy Creamy Tangy Hearty Zesty Simple "
    "Modern Weekend Budget Family Summer Winter Autumn Spring Ultimate Essential Handmade"
).split()
NOUNS = (
    "Guide Kit Set Lamp Chair Backpack Jacket Notebook Blender Skillet Teapot Planter Candle "
    "Course Workshop Podcast Recipe Salad Curry Pasta Risotto Tart Bread Soup Stew Map Atlas"
).split()
ACCENTED = ["Café", "Crème brûlée", "Smörgåsbord", "Jalapeño", "Açaí", "Façade", "Naïve"]
CATEGORIES = ["Cooking", "Travel", "Home", "Outdoors", "Books", "Fitness", "Music", "Garden"]
WORDS = (
    "the a of for with and this your that it's to in from best new one every made light "
    "warm fresh small great little bright quiet long kind good daily simple way time home "
    "table friends weekend morning evening family kitchen garden city trail coast"
).split()
FIRST_NAMES = (
    "Ann Ben Chloé Dan Eva Finn Grace Hugo Ines Jack Kim Leo Mia Noah Olga Paul Quinn Rosa "
    "Sam Tara Uma Victor Wen Xavier Yara Zoë José Anaïs Björn Renée"
).split() + ["O'Brien", "Mary-Kate"]


# ------------------------------------------------------------------ data


def catalogue(n_items: int, seed: int = SEED) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Items as `bulletins.services.content` hands them to rendering, and popularity weights."""
    rng = np.random.default_rng(seed)
    items = []
    for n in range(n_items):
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        roll = rng.random()
        if roll < 0.06:
            title += f" & {rng.choice(NOUNS)}"
        elif roll < 0.10:
            title = f'The "{title}" edition'
        elif roll < 0.18:
            title = f"Chef's {title.lower()}"
        elif roll < 0.23:
            title = f"{rng.choice(ACCENTED)} {title.lower()}"
        elif roll < 0.235:
            title += " <3 for two"
        words = int(np.clip(rng.lognormal(3.0, 0.7), 4, 80))
        description = " ".join(rng.choice(WORDS, words)).capitalize() + "."
        if rng.random() < 0.05:
            description = description.replace(" and ", " & ", 1)
        item_id = f"sku-{n:05d}"
        items.append(
            {
                "item_id": item_id,
                "title": title,
                "url": f"https://shop.example.com/p/{item_id}?utm_source=newsletter",
                "image_url": ""
                if rng.random() < NO_IMAGE_SHARE
                else f"https://cdn.example.com/img/{item_id}.jpg?w=320",
                "description": "" if rng.random() < NO_DESCRIPTION_SHARE else description,
            }
        )
    weights = 1 / np.arange(1, n_items + 1) ** 0.8
    popularity = np.empty(n_items)
    popularity[rng.permutation(n_items)] = weights / weights.sum()
    return items, popularity


def users(start: int, stop: int, n_items: int, popularity: np.ndarray) -> list[dict[str, Any]]:
    """Users `start` to `stop`: the same whichever process draws them."""
    rng = np.random.default_rng([SEED, start])
    per_user = 2 * ITEMS_PER_BLOCK
    draws = rng.choice(n_items, size=(stop - start, 3 * per_user), p=popularity)
    names = rng.choice(len(FIRST_NAMES), size=stop - start)
    empty = rng.random(stop - start) < EMPTY_NAME_SHARE
    out = []
    for offset, row in enumerate(draws):
        picks = list(dict.fromkeys(row.tolist()))[:per_user]
        while len(picks) < per_user:  # rare: too many repeats among the draws
            extra = int(rng.integers(n_items))
            if extra not in picks:
                picks.append(extra)
        n = start + offset
        out.append(
            {
                "n": n,
                "external_id": f"u{n:06d}",
                "email": f"u{n:06d}@example.com",
                "first_name": "" if empty[offset] else FIRST_NAMES[names[offset]],
                "category": CATEGORIES[picks[ITEMS_PER_BLOCK] % len(CATEGORIES)],
                "items": picks,
            }
        )
    return out


# ------------------------------------------------------------------ rendering (workers)

_items: list[dict[str, Any]] = []
_popularity = np.empty(0)


def worker_init(items: list[dict[str, Any]], popularity: np.ndarray) -> None:
    global _items, _popularity
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
    os.environ["PUBLIC_BASE_URL"] = PUBLIC_BASE_URL
    import django

    django.setup()
    _items, _popularity = items, popularity


def worker_ready(pause: float) -> None:
    time.sleep(pause)  # so that each worker takes one, and all have started before the clock


def render_chunk(
    start: int, stop: int, keep: bool, skeletons: bool = True, render_plain: bool = False
) -> dict[str, Any]:
    """Render users `start` to `stop`: per-email ms and bytes, the skeleton counters of this
    chunk, and (`keep`) the messages. `render_plain`: render even a plain layout per user."""
    from bulletins import rendering
    from integrations.platforms.base import Message

    cpu = time.process_time()
    rendering.skeletons.enabled = skeletons
    rendering.skeletons.render_plain_layouts = render_plain
    before = Counter(rendering.skeletons.stats)
    ms = np.empty(stop - start, dtype=np.float32)
    sizes = np.empty(stop - start, dtype=np.int32)
    messages = []
    for k, user in enumerate(users(start, stop, len(_items), _popularity)):
        shown = []
        for position, index in enumerate(user["items"], start=1):
            item = _items[index]
            shown.append({**item, "position": position, "source": "hybrid"})
        blocks = [
            rendering.Block("Picked for you", shown[:ITEMS_PER_BLOCK]),
            rendering.Block(f"Trending in {user['category']}", shown[ITEMS_PER_BLOCK:]),
        ]
        context = {
            "first_name": user["first_name"],
            "email": user["email"],
            "id": user["external_id"],
        }
        email = rendering.bulletin_render(
            subject_template=SUBJECT,
            layout_mjml=None,
            blocks=blocks,
            user=context,
            delivery_id=user["n"] + 1,
        )
        ms[k] = email.render_ms
        sizes[k] = email.size_bytes
        if keep:
            messages.append(
                Message(
                    recipient_id=user["external_id"],
                    email=user["email"],
                    subject=email.subject,
                    html=email.html,
                    text=email.text,
                    idempotency_key=str(user["n"] + 1),
                    headers=email.headers,
                    merge_data=context,
                )
            )
    stats = Counter(rendering.skeletons.stats)
    stats.subtract(before)
    cpu = time.process_time() - cpu
    return {"ms": ms, "sizes": sizes, "stats": dict(stats), "messages": messages, "cpu": cpu}


def single_process(n_users: int, *, skeletons: bool) -> dict[str, Any]:
    """One process, a fresh cache: emails/s over the first `n_users` users."""
    from bulletins import rendering

    rendering.skeletons.clear()
    started = time.perf_counter()
    out = render_chunk(0, n_users, keep=False, skeletons=skeletons)
    seconds = time.perf_counter() - started
    rendering.skeletons.clear()
    rendering.skeletons.enabled = True
    return {
        "rate": n_users / seconds,
        "cpu_rate": n_users / out["cpu"],
        "mean_ms": float(out["ms"].mean()),
        "stats": out["stats"],
    }


def spot_check(start: int, n_users: int) -> dict[str, int]:
    """Users `start` on rendered with skeletons and with every MJML compiled: how many emails
    are the same, and how many of them came from a skeleton."""
    from bulletins import rendering

    rendering.skeletons.clear()
    fast = render_chunk(start, start + n_users, keep=True)
    compiled = render_chunk(start, start + n_users, keep=True, skeletons=False)
    rendering.skeletons.clear()
    rendering.skeletons.enabled = True
    same = sum(a == b for a, b in zip(fast["messages"], compiled["messages"], strict=True))
    return {"users": n_users, "same": same, "from skeleton": fast["stats"]["from skeleton"]}


def render_all(
    n_users: int,
    items: list[dict[str, Any]],
    popularity: np.ndarray,
    keep: int,
    render_plain: bool = False,
) -> dict[str, Any]:
    workers = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # fresh workers: nothing cached from here
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=worker_init, initargs=(items, popularity)
    ) as pool:
        for ready in [pool.submit(worker_ready, 0.5) for _ in range(workers)]:
            ready.result()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        futures = [
            pool.submit(
                render_chunk, start, min(start + CHUNK, n_users), start < keep, True, render_plain
            )
            for start in range(0, n_users, CHUNK)
        ]
        chunks = [future.result() for future in futures]
        seconds = time.perf_counter() - started
    stats: Counter[str] = Counter()
    for chunk in chunks:
        stats.update(chunk["stats"])
    ms = np.concatenate([chunk["ms"] for chunk in chunks])
    sizes = np.concatenate([chunk["sizes"] for chunk in chunks])
    return {
        "workers": workers,
        "load": (load, os.getloadavg()[0]),
        "seconds": seconds,
        "rate": n_users / seconds,
        "cpu_rate": n_users / sum(chunk["cpu"] for chunk in chunks) * workers,
        "ms": ms,
        "sizes": sizes,
        "stats": stats,
        "messages": [m for chunk in chunks for m in chunk["messages"]][:keep],
    }


# ------------------------------------------------------------------ fake platform


class TokenBucket:
    """`rate` requests/s, `burst` at once; a rate of 0 lets everything through."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when a request may pass, else the seconds until one may."""
        if not self.rate:
            return 0.0
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class Platform(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rate: float, burst: int) -> None:
        super().__init__(("127.0.0.1", 0), PlatformHandler)
        self.bucket = TokenBucket(rate, burst)
        self.lock = threading.Lock()
        self.keys: set[str] = set()
        self.answers: dict[str, bytes] = {}  # by batch Idempotency-Key
        self.counts: Counter[str] = Counter()


class PlatformHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the adapter's session expects
    server: Platform

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # the counters, for the report
        state = self.server
        with state.lock:
            body = json.dumps({**state.counts, "unique_keys": len(state.keys)}).encode()
        self.answer(200, body)

    def do_POST(self) -> None:
        from integrations.platforms.webhook import SIGNATURE_HEADER, verify_signature

        state = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        wait = state.bucket.take()
        if wait:
            with state.lock:
                state.counts["429"] += 1
            retry_after = str(max(1, math.ceil(wait)))  # delta-seconds are whole seconds
            self.answer(429, b'{"error": "rate limited"}', {"Retry-After": retry_after})
            return
        if not verify_signature(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body):
            self.answer(401, b'{"error": "bad signature"}')
            return
        batch_key = self.headers.get("Idempotency-Key", "")
        with state.lock:
            replay = state.answers.get(batch_key)
            if replay is not None:
                state.counts["replayed batches"] += 1
        if replay is not None:
            self.answer(200, replay)
            return
        messages = json.loads(body)["messages"]
        if len(messages) > MAX_PLATFORM_BATCH:
            self.answer(413, b'{"error": "at most 1000 messages per batch"}')
            return
        results = []
        with state.lock:
            for message in messages:
                key = message["idempotency_key"]
                if key in state.keys:
                    state.counts["duplicate keys"] += 1
                state.keys.add(key)
                results.append(
                    {"recipient_id": message["recipient_id"], "status": "sent", "message_id": key}
                )
            state.counts["accepted batches"] += 1
            state.counts["accepted messages"] += len(messages)
            answer = json.dumps({"results": results}).encode()
            state.answers[batch_key] = answer
        self.answer(200, answer)


def platform_serve(port: Any, rate: float, burst: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
    server = Platform(rate, burst)
    port.put(server.server_address[1])
    server.serve_forever()


def push(messages: list, *, rate: float, batch: int, senders: int) -> dict[str, Any]:
    import requests

    from integrations.platforms.base import RETRYABLE, SENT
    from integrations.platforms.webhook import WebhookAdapter

    context = multiprocessing.get_context("spawn")
    port = context.Queue()
    burst = max(1, round(rate))  # one second of requests
    server = context.Process(target=platform_serve, args=(port, rate, burst), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port.get(timeout=30)}/messages"
    outcome: Counter[str] = Counter()
    lock = threading.Lock()

    def sender(share: list) -> None:
        adapter = WebhookAdapter(url=url, secret=SECRET, batch_size=batch)
        rounds = 0
        while share and rounds < 5:
            results = adapter.send(share)
            retry = {r.recipient_id for r in results if r.status == RETRYABLE}
            with lock:
                outcome.update(r.status for r in results if r.status != RETRYABLE)
                outcome["sent again (retryable)"] += len(retry)
            share = [m for m in share if m.recipient_id in retry]
            rounds += 1

    shares = [messages[k::senders] for k in range(senders)]
    threads = [threading.Thread(target=sender, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    counts = requests.get(url, timeout=10).json()
    server.terminate()
    server.join()
    return {
        "messages": len(messages),
        "seconds": seconds,
        "rate": len(messages) / seconds,
        "ceiling": rate * batch,
        "sent": outcome[SENT],
        "again": outcome["sent again (retryable)"],
        "server": counts,
        "burst": burst,
    }


# ------------------------------------------------------------------ report


PUSH_ROWS = [
    "messages/s",
    "rate limit × batch, messages/s",
    "seconds",
    "429s answered, each retried",
    "batches accepted",
    "messages sent again after a retryable result",
    "messages sent / accepted (unique keys)",
    "duplicate idempotency keys",
    "lost",
]


def push_column(pushed: dict) -> list[str]:
    server = pushed["server"]
    return [
        f"{pushed['rate']:,.0f}",
        f"{pushed['ceiling']:,.0f}" if pushed["ceiling"] else "–",
        f"{pushed['seconds']:.1f}",
        f"{server.get('429', 0):,}",
        f"{server.get('accepted batches', 0):,}",
        f"{pushed['again']:,}",
        f"{pushed['sent']:,} / {server.get('unique_keys', 0):,}",
        f"{server.get('duplicate keys', 0):,}",
        f"{pushed['messages'] - server.get('unique_keys', 0):,}",
    ]


def markdown(
    args: argparse.Namespace,
    reference: dict,
    single: dict,
    checked: dict,
    pool: dict,
    rendered: dict,
    pushes: tuple[dict, dict] | None,
    command: str,
) -> str:
    from benchmarks.results import stamp

    ms, sizes, stats = pool["ms"], pool["sizes"], pool["stats"]
    keep = min(args.push, args.users)
    hits = stats["from skeleton"] + stats["from skeleton, layout rendered"]
    compiled = {k.removeprefix("compiled: "): v for k, v in stats.items() if "compiled" in k}
    verdict = "meets" if pool["rate"] >= TARGET else "misses"
    lines = [
        "## Bulletin rendering and push",
        "",
        stamp(command),
        "",
        f"{args.users:,} users, each with 2 blocks of {ITEMS_PER_BLOCK} items drawn for them by "
        f"popularity from {args.items:,} synthetic items ({NO_IMAGE_SHARE:.0%} without image, "
        f"{NO_DESCRIPTION_SHARE:.0%} without description; titles with `&`, quotes, "
        f"apostrophes and accents), {EMPTY_NAME_SHARE:.0%} of first names empty. Every email "
        "rendered by `bulletin_render` with its tracked click, open and unsubscribe links, "
        f"the default layout, in a process pool of {pool['workers']} workers (one per core), "
        f"chunks of {CHUNK:,} users; the workers send the first {keep:,} emails back for the push, "
        "inside the timed run.",
        "",
        "| rendering | emails/s | emails/s by CPU time | mean ms per email |",
        "| --- | --- | --- | --- |",
        f"| {pool['workers']} processes, skeletons (all {args.users:,} emails) | "
        f"{pool['rate']:,.0f} | {pool['cpu_rate']:,.0f} | {ms.mean():.3f} |",
        f"| {pool['workers']} processes, skeletons, layout rendered for each user (first "
        f"{args.users // 2:,}) | {rendered['rate']:,.0f} | {rendered['cpu_rate']:,.0f} | "
        f"{rendered['ms'].mean():.3f} |",
        f"| 1 process, skeletons, cold cache (first {args.reference:,}) | {single['rate']:,.0f} | "
        f"{single['cpu_rate']:,.0f} | {single['mean_ms']:.3f} |",
        f"| 1 process, every MJML compiled (first {args.reference:,}) | "
        f"{reference['rate']:,.0f} | {reference['cpu_rate']:,.0f} | {reference['mean_ms']:.3f} |",
        "",
        "The default layout is plain (`layout_is_plain`: values, loops and truthiness only), so "
        "once a shape's skeleton is checked its emails are filled in without Django rendering "
        "the layout; the row where it is rendered for each user (and its MJML compared with the "
        "skeleton's, as for any layout with filters) shows what that saves. "
        "Emails/s is wall clock. By CPU time is what the processes' own CPU seconds allow (for "
        "the pool, per worker times the workers): the figure the cores would give with no one "
        "else on them. Load average (1 minute) when the pool started and ended: "
        f"{pool['load'][0]:.2f} and {pool['load'][1]:.2f}.",
        "",
        f"The pool renders {pool['rate']:,.0f} emails/s: it {verdict} the target of "
        f"{TARGET:,}/s on 2 cores, {pool['rate'] / reference['rate']:.1f}× one process "
        f"compiling every email in the same run. Per email: p50 {np.percentile(ms, 50):.3f} ms, "
        f"p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.1f} ms; size mean "
        f"{sizes.mean() / 1024:.1f} KB, max {sizes.max() / 1024:.1f} KB (Gmail clips at 102 KB).",
        "",
        f"Skeletons: {hits / args.users:.1%} of emails filled in from a compiled skeleton; "
        "compiled: " + ", ".join(f"{v:,} {k}" for k, v in sorted(compiled.items())) + ". "
        f"{stats['skeletons built']:,} skeletons built over the {pool['workers']} processes' "
        "caches (the first user of a shape in a process is compiled too, to check the "
        "skeleton). An email from a skeleton is the same bytes as compiling its MJML "
        "(`tests/bulletins/test_render_cache.py`); in this run the last "
        f"{checked['users']:,} users were rendered both ways: {checked['same']:,} the same, "
        f"{checked['from skeleton']:,} of them from a skeleton.",
    ]
    if pushes:
        free, limited = pushes
        lines += [
            "",
            f"Push: the first {limited['messages']:,} emails through `WebhookAdapter` (batches "
            f"of {args.batch}, {args.senders} sender threads, each with its share) to a fake "
            "platform on 127.0.0.1 in its own process, which checks each batch's signature, "
            f"takes at most {MAX_PLATFORM_BATCH:,} messages a batch and records every "
            "message's idempotency key; first with no limit, then at most "
            f"{args.rate:g} requests/s (a token bucket of {limited['burst']}: above it 429 "
            "with a whole-second `Retry-After`, which the adapter waits before trying again).",
            "",
            f"| push | no limit | {args.rate:g} requests/s |",
            "| --- | --- | --- |",
        ]
        columns = [push_column(free), push_column(limited)]
        lines += [f"| {name} | {a} | {b} |" for name, a, b in zip(PUSH_ROWS, *columns, strict=True)]
        share = limited["rate"] / limited["ceiling"]
        lines += [
            "",
            f"At the limit the push reaches {share:.0%} of the rate limit × batch size "
            f"(the bucket's initial burst of {limited['burst']} requests included).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--reference", type=int, default=3000, help="users for 1-process runs")
    parser.add_argument("--push", type=int, default=20_000, help="emails to push (0: none)")
    parser.add_argument("--rate", type=float, default=10, help="platform requests/s")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= MAX_PLATFORM_BATCH:
        parser.error(f"--batch must be between 1 and {MAX_PLATFORM_BATCH}")
    if args.rate <= 0:
        parser.error("--rate must be positive")

    items, popularity = catalogue(args.items)
    worker_init(items, popularity)
    reference = single_process(args.reference, skeletons=False)
    single = single_process(args.reference, skeletons=True)
    print(f"1 process: {reference['rate']:,.0f} emails/s compiled, {single['rate']:,.0f} skeletons")
    checked = spot_check(max(0, args.users - SPOT_CHECK), min(SPOT_CHECK, args.users))
    print(f"spot check: {checked}")
    if checked["same"] != checked["users"]:
        print("an email from a skeleton differs from its compiled MJML", file=sys.stderr)
        return 1
    pool = render_all(args.users, items, popularity, keep=min(args.push, args.users))
    print(f"{pool['workers']} processes: {pool['rate']:,.0f} emails/s, {dict(pool['stats'])}")
    rendered = render_all(args.users // 2, items, popularity, keep=0, render_plain=True)
    print(f"{pool['workers']} processes, layout rendered: {rendered['rate']:,.0f} emails/s")
    pushes = None
    if args.push:
        messages = pool.pop("messages")
        options = {"batch": args.batch, "senders": args.senders}
        pushes = push(messages, rate=0, **options), push(messages, rate=args.rate, **options)
        for pushed in pushes:
            print(f"push: {pushed['rate']:,.0f} messages/s, {pushed['server']}")

    defaults = {"users": 100_000, "items": 5000, "reference": 3000, "push": 20_000, "rate": 10}
    defaults |= {"batch": 100, "senders": 4}
    changed = [f"--{k} {getattr(args, k):g}" for k, v in defaults.items() if getattr(args, k) != v]
    command = "make bench-bulletins"
    if changed:
        command = "python benchmarks/bulletins_render.py " + " ".join(changed)
    section = markdown(args, reference, single, checked, pool, rendered, pushes, command)
    print(section)
    if args.write:
        from benchmarks.results import RESULTS, section_write

        section_write("bulletins", section)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
