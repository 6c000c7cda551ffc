"""Synthetic catalogue, audience and behaviour with planted tastes (pure NumPy/pandas, no Django).

A media/learning publisher: courses, videos, podcasts and articles over twelve topics. Every user
has one to three favourite topics (Dirichlet weights) nudged by their age group, country and plan,
a preferred content-type mix and a heavy-tailed activity level. Interactions follow the user's
topics most of the time (the rest is exploration), favour popular and recent items, run through a
funnel (view -> click -> like / watch / purchase / complete) and always come after the item's
publish date. The planted truth (`tastes`) is returned with the data, so tests and the demo can
check that recommendations follow it.

- `generate(...)` returns `SyntheticData`: items, users and interactions in the project's
  Personalize-style CSV layout (`write_csvs` feeds `manage.py import_data`), plus `tastes`;
  `engine_frames()` gives the engine's lowercase layout.
- `generate_scale(...)` returns `EngineFrames` only, fully vectorised, for benchmarks
  (1M users x 50k items x 20M interactions).

Deterministic for a seed (and a given `now`).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "CONTENT_TYPES",
    "EVENT_TYPES",
    "TOPICS",
    "EngineFrames",
    "SyntheticData",
    "Topic",
    "generate",
    "generate_scale",
]

DAY = 86_400
HOUR = 3_600
CATALOGUE_DAYS = 730  # items are published over the last two years, more of them recently
WINDOW_DAYS = 180  # interactions happen over the last six months
EVENT_TYPES = ("view", "click", "like", "watch", "purchase", "complete")  # funnel order
VIEW, CLICK, LIKE, WATCH, PURCHASE, COMPLETE = range(len(EVENT_TYPES))


# --------------------------------------------------------------------------- topics and vocabulary
@dataclass(frozen=True)
class Topic:
    name: str  # also the first category of its items
    area: str  # the broader second category
    share: float  # relative size, in the catalogue and in the audience
    show: str  # the topic's podcast
    subjects: tuple[str, ...]  # noun phrases, natural casing
    tasks: tuple[str, ...]  # verb phrases for "How to ..."
    tags: tuple[str, ...]
    audiences: tuple[str, ...]


# fmt: off
TOPICS: tuple[Topic, ...] = (
    Topic(
        "Python Programming", "Technology", 1.2, "The Pythonic Hour",
        ("Python decorators", "list comprehensions", "async Python", "type hints", "pytest",
         "Python packaging", "virtual environments", "dataclasses", "generators and iterators",
         "FastAPI", "Django models", "regular expressions", "the Python standard library",
         "error handling in Python", "Python performance tuning", "command-line tools"),
        ("write your first Python script", "test Python code with pytest",
         "package a Python library", "speed up slow Python loops",
         "build a REST API with FastAPI", "debug Python like a pro",
         "automate boring spreadsheets with Python", "structure a Python project"),
        ("python", "programming", "pytest", "django", "fastapi", "asyncio", "type hints",
         "packaging", "debugging", "scripting", "code review", "refactoring", "pip", "automation"),
        ("developers moving to Python", "self-taught programmers", "backend engineers"),
    ),
    Topic(
        "Data Science", "Technology", 1.1, "Signal & Noise",
        ("pandas DataFrames", "linear regression", "A/B testing", "feature engineering",
         "SQL joins", "data visualisation", "time series forecasting", "random forests",
         "Jupyter notebooks", "data cleaning", "Bayesian statistics", "gradient boosting",
         "dashboards", "recommender systems", "hypothesis testing", "clustering"),
        ("clean a messy dataset", "build your first machine learning model",
         "choose the right chart", "run an honest A/B test", "explain a model to your boss",
         "forecast next month's sales", "write faster SQL queries", "spot data leakage"),
        ("data science", "machine learning", "statistics", "pandas", "sql", "visualisation",
         "regression", "scikit-learn", "jupyter", "forecasting", "analytics", "experiments",
         "feature engineering", "dashboards"),
        ("aspiring analysts", "engineers curious about machine learning", "product managers"),
    ),
    Topic(
        "Cooking", "Home & Lifestyle", 1.3, "The Slow Kitchen",
        ("sourdough", "knife skills", "weeknight pasta", "fermentation", "braising",
         "homemade stock", "French sauces", "one-pot dinners", "Thai curries", "fresh pasta",
         "meal prep", "cast-iron cooking", "bread baking", "spice blends", "vegetarian mains",
         "pastry"),
        ("make a sourdough starter", "sharpen a chef's knife", "cook rice perfectly every time",
         "roast a whole chicken", "make fresh pasta by hand", "stock a better pantry",
         "plan a week of dinners", "rescue a broken sauce"),
        ("cooking", "recipes", "baking", "sourdough", "fermentation", "knife skills", "pasta",
         "meal prep", "vegetarian", "kitchen", "sauces", "bread", "dinner", "spices"),
        ("home cooks", "busy parents", "anyone who wants to cook more"),
    ),
    Topic(
        "Personal Finance", "Business & Money", 1.1, "Money Without the Jargon",
        ("index funds", "budgeting", "emergency funds", "retirement accounts", "credit scores",
         "paying off debt", "compound interest", "rental property", "ETFs",
         "tax-efficient investing", "saving for a house", "financial independence",
         "insurance", "side income", "bonds", "money and relationships"),
        ("build a budget that sticks", "pay off credit card debt", "start investing with $100",
         "read a pension statement", "negotiate a raise", "build an emergency fund",
         "choose a low-cost index fund", "cut your monthly bills"),
        ("personal finance", "investing", "budgeting", "index funds", "retirement", "saving",
         "debt", "etf", "pension", "taxes", "credit score", "money", "compound interest",
         "mortgage"),
        ("first-time investors", "young professionals", "families planning ahead"),
    ),
    Topic(
        "Photography", "Creative Arts", 0.9, "Aperture Talks",
        ("exposure", "portrait lighting", "street photography", "composition",
         "Lightroom editing", "landscape photography", "prime lenses", "night photography",
         "film photography", "colour grading", "product photography", "manual mode",
         "golden hour", "black-and-white photography", "wildlife photography", "photo walks"),
        ("shoot in manual mode", "light a portrait with one flash", "edit a photo in Lightroom",
         "photograph the night sky", "pick your first prime lens", "compose a stronger photo",
         "shoot sharp photos handheld", "build a photography portfolio"),
        ("photography", "camera", "lightroom", "composition", "portrait", "landscape", "lenses",
         "exposure", "editing", "aperture", "shutter speed", "iso", "lighting", "film"),
        ("new camera owners", "hobbyist photographers", "smartphone shooters"),
    ),
    Topic(
        "Gardening", "Home & Lifestyle", 0.7, "The Potting Shed",
        ("raised beds", "composting", "tomatoes", "seed starting", "container gardening",
         "pruning roses", "companion planting", "perennial borders", "lawn care", "herbs",
         "fruit trees", "soil health", "organic pest control", "houseplants",
         "wildflower meadows", "winter vegetables"),
        ("start seeds indoors", "build a raised bed", "make compost in eight weeks",
         "prune a fruit tree", "keep slugs off your lettuce", "plan a vegetable garden",
         "revive a dying houseplant", "grow tomatoes in pots"),
        ("gardening", "vegetables", "compost", "soil", "seeds", "pruning", "houseplants", "herbs",
         "organic", "raised beds", "perennials", "tomatoes", "allotment", "pests"),
        ("first-time gardeners", "allotment holders", "balcony growers"),
    ),
    Topic(
        "Fitness", "Home & Lifestyle", 1.0, "Stronger Every Week",
        ("strength training", "running form", "mobility", "HIIT workouts", "kettlebells",
         "marathon training", "bodyweight training", "protein and recovery", "yoga for runners",
         "deadlifts", "core strength", "stretching", "indoor cycling", "sleep and recovery",
         "home workouts", "progressive overload"),
        ("run your first 5K", "deadlift with good form", "build a home gym on a budget",
         "train for a half marathon", "fix your squat", "stay consistent with exercise",
         "warm up properly", "recover faster between workouts"),
        ("fitness", "workout", "strength", "running", "mobility", "hiit", "kettlebell", "yoga",
         "training", "recovery", "marathon", "exercise", "nutrition", "squat"),
        ("beginners getting back in shape", "weekend runners", "busy people with 20 minutes"),
    ),
    Topic(
        "Travel", "Culture & Travel", 1.0, "Window Seat",
        ("slow travel", "Japan by rail", "travel hacking", "backpacking in Southeast Asia",
         "packing light", "solo travel", "road trips", "travel photography", "city breaks",
         "hiking in the Alps", "travel insurance", "budget travel", "island hopping in Greece",
         "night trains", "digital nomad life", "travelling with kids"),
        ("pack for two weeks in a carry-on", "find cheap flights",
         "plan a rail trip across Europe", "beat jet lag", "travel on a budget",
         "choose travel insurance", "use points and miles", "plan your first solo trip"),
        ("travel", "itinerary", "backpacking", "flights", "rail", "packing", "budget travel",
         "solo travel", "hotels", "hiking", "road trip", "destinations", "jet lag", "city guide"),
        ("first-time travellers", "long-weekend planners", "families on the road"),
    ),
    Topic(
        "History", "Culture & Travel", 0.8, "Footnotes of History",
        ("the Roman Empire", "the Silk Road", "the Industrial Revolution", "ancient Egypt",
         "the Cold War", "medieval castles", "the Renaissance", "the Vikings",
         "the French Revolution", "the Ottoman Empire", "the First World War",
         "the Byzantine Empire", "the Age of Exploration", "the Mongol Empire",
         "ancient Greece", "the Space Race"),
        ("read a primary source", "visit a battlefield like a historian",
         "trace your family history", "spot a historical myth", "date an old photograph",
         "research a local legend", "read a medieval map", "start a history reading list"),
        ("history", "ancient history", "empire", "archaeology", "medieval", "war", "revolution",
         "historians", "primary sources", "civilisation", "dynasty", "artefacts", "heritage",
         "chronicles"),
        ("curious readers", "history buffs", "students and teachers"),
    ),
    Topic(
        "Music Production", "Creative Arts", 0.6, "The Mixdown",
        ("vocal mixing", "synthesis", "drum programming", "mastering", "Ableton Live",
         "sound design", "compression", "EQ", "music theory for producers", "sampling",
         "home studio acoustics", "songwriting", "arrangement", "modular synths",
         "lo-fi beats", "MIDI controllers"),
        ("mix vocals that sit in the track", "program a drum groove", "master a track at home",
         "treat a small room", "design a bass sound from scratch", "finish more songs",
         "use compression without killing dynamics", "clear a sample"),
        ("music production", "mixing", "mastering", "synth", "ableton", "daw", "beats",
         "sound design", "eq", "compression", "audio", "songwriting", "studio", "midi"),
        ("bedroom producers", "songwriters", "DJs who want to make their own tracks"),
    ),
    Topic(
        "Marketing", "Business & Money", 0.8, "Funnel Vision",
        ("email marketing", "SEO", "content strategy", "brand positioning", "marketing funnels",
         "copywriting", "social media ads", "customer retention", "landing pages",
         "newsletter growth", "product launches", "marketing analytics",
         "influencer marketing", "pricing pages", "customer personas", "growth loops"),
        ("write a subject line people open", "grow a newsletter to 10,000 subscribers",
         "plan a product launch", "run your first ad campaign", "measure marketing ROI",
         "write a landing page that converts", "rank on Google", "reduce customer churn"),
        ("marketing", "seo", "email marketing", "copywriting", "branding", "advertising",
         "growth", "conversion", "campaigns", "social media", "newsletter", "funnel",
         "content marketing", "retention"),
        ("founders", "marketers at small companies", "freelancers finding clients"),
    ),
    Topic(
        "Design", "Creative Arts", 0.8, "Kerning & Coffee",
        ("typography", "colour theory", "UX research", "design systems", "Figma",
         "logo design", "grid layouts", "accessibility", "wireframing", "icon design",
         "user interviews", "interaction design", "brand identity", "illustration",
         "prototyping", "information architecture"),
        ("pair fonts with confidence", "build a design system in Figma", "run a usability test",
         "choose an accessible colour palette", "design a logo", "give useful design feedback",
         "prototype an app in a day", "build a design portfolio"),
        ("design", "ux", "ui", "typography", "figma", "colour", "accessibility", "prototyping",
         "visual identity", "illustration", "layout", "design systems", "usability",
         "wireframes"),
        ("junior designers", "developers who design", "product teams"),
    ),
)
# fmt: on
TOPIC_NAMES = tuple(t.name for t in TOPICS)
TOPIC_SHARE = np.array([t.share for t in TOPICS]) / sum(t.share for t in TOPICS)

CONTENT_TYPES = ("article", "video", "podcast", "course")
ARTICLE, VIDEO, PODCAST, COURSE = range(len(CONTENT_TYPES))
URL_SECTION = {"article": "articles", "video": "videos", "podcast": "podcasts", "course": "courses"}
CATALOGUE_TYPE_SHARE = np.array([0.42, 0.26, 0.17, 0.15])
COURSE_PRICES = np.array([19.0, 29.0, 39.0, 49.0, 79.0, 99.0, 149.0])
UNAVAILABLE_SHARE = 0.03
ZIPF_EXPONENT = 0.8  # item popularity ~ rank ** -exponent
RECENCY_BOOST, RECENCY_DAYS = 2.0, 45.0  # new items get up to 1 + boost times the daily traffic

# ------------------------------------------------------------------------ audience and its tastes
AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARE = np.array([0.13, 0.29, 0.25, 0.18, 0.15])
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "JP", "ES")
COUNTRY_SHARE = np.array([0.32, 0.14, 0.09, 0.07, 0.10, 0.06, 0.07, 0.06, 0.05, 0.04])
PLANS = ("free", "plus", "pro")
PLAN_SHARE = np.array([0.72, 0.20, 0.08])
PLAN_ACTIVITY = np.array([0.8, 1.5, 2.2])  # relative activity level
PLAN_OPT_IN = np.array([0.82, 0.92, 0.95])  # ~85% email opt-in overall

# fmt: off
# Additive nudges to the log-odds of picking a topic as a favourite.
AGE_TOPIC_AFFINITY: dict[str, dict[str, float]] = {
    "18-24": {"Fitness": 0.8, "Music Production": 0.9, "Travel": 0.5, "Python Programming": 0.5,
              "Design": 0.4, "Gardening": -1.0, "History": -0.4, "Personal Finance": -0.3},
    "25-34": {"Python Programming": 0.6, "Data Science": 0.7, "Personal Finance": 0.4,
              "Marketing": 0.4, "Fitness": 0.4, "Travel": 0.3, "Gardening": -0.6},
    "35-44": {"Personal Finance": 0.6, "Cooking": 0.5, "Marketing": 0.4, "Data Science": 0.3,
              "Music Production": -0.4},
    "45-54": {"Cooking": 0.5, "Gardening": 0.6, "Personal Finance": 0.5, "History": 0.4,
              "Music Production": -0.6, "Fitness": -0.2},
    "55+": {"Gardening": 1.1, "History": 1.0, "Travel": 0.5, "Cooking": 0.4,
            "Python Programming": -0.6, "Music Production": -0.9, "Fitness": -0.4},
}
COUNTRY_TOPIC_AFFINITY: dict[str, dict[str, float]] = {
    "US": {"Personal Finance": 0.5, "Marketing": 0.4, "Fitness": 0.3},
    "GB": {"Gardening": 0.7, "History": 0.5},
    "DE": {"Travel": 0.5, "Data Science": 0.3, "Design": 0.3},
    "FR": {"Cooking": 0.8, "History": 0.3, "Design": 0.3},
    "IN": {"Python Programming": 0.9, "Data Science": 0.9, "Cooking": -0.3},
    "BR": {"Music Production": 0.8, "Fitness": 0.5, "Marketing": 0.3},
    "CA": {"Travel": 0.4, "Personal Finance": 0.3},
    "AU": {"Travel": 0.6, "Fitness": 0.4, "Gardening": 0.3},
    "JP": {"Photography": 1.0, "Design": 0.5, "Cooking": 0.3},
    "ES": {"Travel": 0.5, "Cooking": 0.5, "Music Production": 0.3},
}
PLAN_TOPIC_AFFINITY: dict[str, dict[str, float]] = {
    "plus": {"Photography": 0.2, "Design": 0.2},
    "pro": {"Python Programming": 0.4, "Data Science": 0.5, "Marketing": 0.4, "Design": 0.4},
}
# fmt: on
FAVOURITE_COUNT_SHARE = np.array([0.30, 0.45, 0.25])  # users with 1, 2 or 3 favourite topics
TASTE_ALPHA = 2.0  # Dirichlet concentration of the favourite-topic weights

# Preferred content-type mix: Dirichlet around the base mix, nudged by age group and plan.
BASE_TYPE_MIX = np.array([0.40, 0.28, 0.17, 0.15])  # article, video, podcast, course
TYPE_MIX_CONCENTRATION = 6.0
# fmt: off
AGE_TYPE_FACTOR = np.array([
    [0.8, 1.6, 0.8, 1.0],  # 18-24
    [1.0, 1.1, 1.4, 1.1],  # 25-34
    [1.0, 1.0, 1.3, 1.0],  # 35-44
    [1.3, 0.9, 1.0, 0.9],  # 45-54
    [1.5, 0.8, 0.7, 0.8],  # 55+
])
PLAN_TYPE_FACTOR = np.array([
    [1.0, 1.0, 1.0, 0.8],  # free
    [1.0, 1.0, 1.0, 1.5],  # plus
    [0.9, 1.0, 1.0, 2.5],  # pro
])
# fmt: on
ACTIVITY_SIGMA = 1.1  # log-normal spread of activity: a few heavy users, many light ones

# --------------------------------------------------------------------------------- the funnel
EXPLORE_SHARE = 0.12  # engagements drawn from any topic rather than the user's favourites
EXPLORE_FACTOR = 0.5  # off-taste items are clicked, liked and bought less
CLICK_P = np.array([0.45, 0.50, 0.40, 0.35])  # per content type, given a view
LIKE_P = np.array([0.15, 0.12, 0.10, 0.08])  # given a click
WATCH_P = np.array([0.0, 0.70, 0.65, 0.0])  # videos and podcasts, given a click
READ_TO_END_P = np.array([0.35, 0.0, 0.0, 0.0])  # articles: "complete" given a click
PURCHASE_P = np.array([0.0, 0.0, 0.0, 0.22])  # courses, given a click
COURSE_COMPLETE_P = 0.40  # given a purchase
FINISH_P = (0.45, 0.12)  # a watch runs to the end (-> complete): in taste, off taste
OVERSUPPLY = 1.15  # engagements drawn in excess, then thinned to the exact event budget

# ----------------------------------------------------------------------------------- templates
# fmt: off
TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "article": (
        "{n} Things I Wish I Knew About {subject}", "A Beginner's Guide to {subject}",
        "{subject}: What the Experts Get Wrong", "How to {task}: A Practical Guide",
        "The Case for {subject}", "{subject}, Explained in Plain English",
        "{n} Myths About {subject}", "Rethinking {subject}",
    ),
    "video": (
        "How to {task}", "{subject} in {minutes} Minutes", "{subject} Explained",
        "{n} Myths About {subject}, Debunked", "Watch: {subject}, Step by Step",
        "How to {task} (Quick Demo)",
    ),
    "podcast": (
        "Episode {episode}: {subject} Without the Jargon",
        "{show}, Ep. {episode}: {subject} with {guest}",
        "Episode {episode}: What Nobody Tells You About {subject}",
        "{show} #{episode}: Your Questions on {subject}",
    ),
    "course": (
        "{bare} from Scratch: A Weekend Course", "The Complete {bare} Course",
        "{bare} for Beginners: A {weeks}-Week Course", "Understanding {subject}",
        "Hands-On {bare}: From First Steps to Confidence", "{bare} Masterclass",
        "Practical {bare}: A Self-Paced Course",
    ),
}
DESCRIPTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "article": (
        "{a_level} guide to {subject}, written for {audience}. Along the way: {tag_list}.",
        "Everything you need to know about {subject}, plus the mistakes to avoid. "
        "Also touches on {tag_list}.",
    ),
    "video": (
        "In this {minutes}-minute video we walk through {subject}, step by step. "
        "Perfect for {audience}; also covers {tag_list}.",
        "A quick, practical demo of {subject} for {audience}. Along the way: {tag_list}.",
    ),
    "podcast": (
        "{guest} joins {host} to talk about {subject}: what works, what doesn't, and {tag_list}. "
        "{a_level} conversation for {audience}.",
        "This week on {show}: {subject}. We get into {tag_list}, and answer your questions.",
    ),
    "course": (
        "{a_level} course on {subject}. Over {weeks} weeks of short lessons you will work "
        "through {tag_list}, with exercises after every lesson. Made for {audience}.",
        "Learn {subject} step by step, with worked examples and a final project. "
        "{weeks} weeks, self-paced; along the way: {tag_list}. Made for {audience}.",
    ),
}
LEVELS = ("beginner", "intermediate", "advanced")
LEVEL_SHARE = (0.5, 0.35, 0.15)
A_LEVEL = {"beginner": "A beginner-friendly", "intermediate": "An intermediate",
           "advanced": "An advanced"}
SMALL_WORDS = frozenset("a an and as at by for from in into of on or the to with without".split())
FIRST_NAMES = (
    "Maria", "James", "Aisha", "Liam", "Sofia", "Noah", "Priya", "Lucas", "Emma", "Mateo",
    "Yuki", "Olivia", "Arjun", "Chloe", "Daniel", "Fatima", "Hannah", "Kenji", "Laura", "Omar",
    "Rosa", "Samuel", "Tara", "Victor", "Zara", "Elena", "Felix", "Grace", "Ines", "Jonas",
)
LAST_NAMES = (
    "Garcia", "Smith", "Khan", "Muller", "Rossi", "Silva", "Patel", "Martin", "Nguyen", "Brown",
    "Tanaka", "Dubois", "Kowalski", "Lopez", "Wilson", "Okafor", "Fischer", "Haddad", "Jensen",
    "Moreau", "Ito", "Costa", "Sharma", "Walsh", "Novak", "Evans", "Schmidt", "Reyes", "Berg",
    "Clarke",
)
# fmt: on


# ------------------------------------------------------------------------------------ results
@dataclass
class EngineFrames:
    """The engine's layout: lowercase columns, datetimes in UTC, list-valued categories/tags."""

    interactions: pd.DataFrame  # user_id, item_id, timestamp, event_type, event_value
    items: pd.DataFrame  # item_id, title, [description], categories, tags, content_type, ...
    users: pd.DataFrame  # user_id, age_group, country, plan
    tastes: pd.DataFrame  # user_id, topic, weight: the planted truth

    def item_topics(self) -> pd.Series:
        """Each item's topic (its first category), indexed by item_id."""
        return pd.Series(
            [c[0] for c in self.items["categories"]], index=self.items["item_id"], name="topic"
        )

    def topic_share(self, pairs: pd.DataFrame) -> float:
        """Share of (user_id, item_id) pairs (events, recommendations) in the user's topics."""
        return topic_share(pairs, self.tastes, self.item_topics())


@dataclass
class SyntheticData:
    """Items, users and interactions in the Personalize-style CSV layout, plus the truth."""

    items: pd.DataFrame  # ITEM_ID, TITLE, DESCRIPTION, URL, IMAGE_URL, CATEGORIES, TAGS, ...
    users: pd.DataFrame  # USER_ID, EMAIL, EMAIL_OPT_IN, AGE_GROUP, COUNTRY, PLAN
    interactions: pd.DataFrame  # USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, EVENT_VALUE
    tastes: pd.DataFrame  # user_id, topic, weight (favourite topics; weights sum to 1)

    def write_csvs(self, directory: str | Path) -> dict[str, Path]:
        """Write users.csv, items.csv and interactions.csv (UTF-8, header row, `|` lists)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {name: directory / f"{name}.csv" for name in ("users", "items", "interactions")}
        _csv_ready(self.users).to_csv(paths["users"], index=False, encoding="utf-8")
        _csv_ready(self.items).to_csv(paths["items"], index=False, encoding="utf-8")
        self.interactions.to_csv(paths["interactions"], index=False, encoding="utf-8")
        return paths

    def engine_frames(self) -> EngineFrames:
        """The same data in the engine's layout (string ids as in the CSVs)."""
        inter = self.interactions
        interactions = pd.DataFrame(
            {
                "user_id": inter["USER_ID"],
                "item_id": inter["ITEM_ID"],
                "timestamp": pd.to_datetime(inter["TIMESTAMP"], unit="s", utc=True),
                "event_type": inter["EVENT_TYPE"],
                "event_value": inter["EVENT_VALUE"],
            }
        )
        it = self.items
        items = pd.DataFrame(
            {
                "item_id": it["ITEM_ID"],
                "title": it["TITLE"],
                "description": it["DESCRIPTION"],
                "categories": it["CATEGORIES"].str.split("|"),
                "tags": it["TAGS"].str.split("|"),
                "content_type": it["CONTENT_TYPE"],
                "published_at": pd.to_datetime(it["PUBLISHED_AT"], unit="s", utc=True),
                "price": it["PRICE"],
                "available": it["AVAILABLE"],
                "url": it["URL"],
                "image_url": it["IMAGE_URL"],
            }
        )
        users = self.users.drop(columns=["EMAIL", "EMAIL_OPT_IN"])
        users = users.rename(columns=str.lower)
        return EngineFrames(interactions, items, users, self.tastes.copy())

    def item_topics(self) -> pd.Series:
        """Each item's topic (its first category), indexed by ITEM_ID."""
        topics = self.items["CATEGORIES"].str.split("|").str[0]
        return pd.Series(topics.to_numpy(), index=self.items["ITEM_ID"], name="topic")

    def topic_share(self, pairs: pd.DataFrame) -> float:
        """Share of pairs (USER_ID/ITEM_ID or user_id/item_id columns) in the user's topics."""
        return topic_share(pairs.rename(columns=str.lower), self.tastes, self.item_topics())


def topic_share(pairs: pd.DataFrame, tastes: pd.DataFrame, item_topics: pd.Series) -> float:
    """Share of `pairs` (user_id, item_id) whose item is in one of the user's planted topics."""
    if pairs.empty:
        return float("nan")
    topic = pairs["item_id"].map(item_topics)
    keys = pd.MultiIndex.from_arrays([pairs["user_id"], topic])
    planted = pd.MultiIndex.from_frame(tastes[["user_id", "topic"]])
    return float(keys.isin(planted).mean())


# --------------------------------------------------------------------------------- public API
def generate(
    n_users: int = 2000,
    n_items: int = 600,
    mean_events_per_user: float = 40.0,
    seed: int = 7,
    now: pd.Timestamp | str | float | None = None,
) -> SyntheticData:
    """A catalogue, an audience and their interactions in the CSV layout, with the truth.

    Users average `mean_events_per_user` events in expectation (a few have none: cold
    starts). `now` is the end of the interaction window (default: today, midnight UTC, so runs
    on the same day agree); every timestamp is before it, and after its item's publish date.
    """
    now_s = _now_seconds(now)
    rngs, text_rng = _rngs(seed)
    catalogue = _catalogue(rngs[0], n_items, now_s)
    audience = _audience(rngs[1], n_users, _engagements_per_user(mean_events_per_user))
    events = _events(rngs[2], audience, catalogue, now_s, mean_events_per_user * n_users)
    item_ids = _ids("item", n_items)
    user_ids = _ids("user", n_users)
    return SyntheticData(
        items=_items_frame(text_rng, catalogue, item_ids),
        users=_users_frame(text_rng, audience, user_ids),
        interactions=_interactions_frame(events, user_ids, item_ids),
        tastes=_tastes_frame(audience, user_ids),
    )


def generate_scale(
    n_users: int = 1_000_000,
    n_items: int = 50_000,
    n_interactions: int = 20_000_000,
    seed: int = 7,
    now: pd.Timestamp | str | float | None = None,
) -> EngineFrames:
    """Benchmark-sized data in the engine layout, fully vectorised; integer ids from 0.

    The interaction count is `n_interactions` in expectation (Poisson noise: about 0.02% at
    20M). Items carry short titles, categories and tags but no descriptions; users carry
    age_group, country and plan as categoricals; event_type is a categorical too.
    """
    now_s = _now_seconds(now)
    rngs, text_rng = _rngs(seed)
    catalogue = _catalogue(rngs[0], n_items, now_s)
    per_user = _engagements_per_user(n_interactions / max(n_users, 1))
    audience = _audience(rngs[1], n_users, per_user)
    events = _events(rngs[2], audience, catalogue, now_s, n_interactions)
    user_ids = np.arange(n_users, dtype=np.int32)
    return EngineFrames(
        interactions=_scale_interactions(events),
        items=_scale_items(text_rng, catalogue),
        users=_scale_users(audience, user_ids),
        tastes=_tastes_frame(audience, user_ids, categorical=True),
    )


def _scale_interactions(events: _Events) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": events.user,
            "item_id": events.item,
            "timestamp": pd.to_datetime(events.timestamp, unit="s", utc=True),
            "event_type": pd.Categorical.from_codes(events.event_type, EVENT_TYPES),
            "event_value": events.value,
        }
    )


def _scale_items(rnd: random.Random, catalogue: _Catalogue) -> pd.DataFrame:
    n_items = len(catalogue.topic)
    texts = [_item_text(rnd, catalogue, i, describe=False) for i in range(n_items)]
    return pd.DataFrame(
        {
            "item_id": np.arange(n_items, dtype=np.int32),
            "title": [t.title for t in texts],
            "categories": [[TOPICS[t].name, TOPICS[t].area] for t in catalogue.topic],
            "tags": [t.tags for t in texts],
            "content_type": pd.Categorical.from_codes(catalogue.ctype, CONTENT_TYPES),
            "published_at": pd.to_datetime(catalogue.published_at, unit="s", utc=True),
            "price": catalogue.price.astype(np.float32),
            "available": catalogue.available,
        }
    )


def _scale_users(audience: _Audience, user_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "age_group": pd.Categorical.from_codes(audience.age, AGE_GROUPS),
            "country": pd.Categorical.from_codes(audience.country, COUNTRIES),
            "plan": pd.Categorical.from_codes(audience.plan, PLANS),
        }
    )


# ------------------------------------------------------------------------- numeric structure
@dataclass
class _Catalogue:
    topic: np.ndarray  # int16 topic index
    ctype: np.ndarray  # int8 content type index
    published_at: np.ndarray  # int64 unix seconds; item order = publish order
    popularity: np.ndarray  # float64 Zipf weight
    price: np.ndarray  # float64, 0 for free content
    available: np.ndarray  # bool
    episode: np.ndarray  # int32 podcast episode number (0 for other types)


@dataclass
class _Audience:
    age: np.ndarray  # int8 index into AGE_GROUPS
    country: np.ndarray  # int8
    plan: np.ndarray  # int8
    favourites: np.ndarray  # (n, 3) int16 topic indexes, -1 past the user's count
    weights: np.ndarray  # (n, 3) float32 favourite weights, rows sum to 1
    type_mix: np.ndarray  # (n, 4) float32 content-type preferences, rows sum to 1
    engagements: np.ndarray  # float64 expected number of items engaged with


@dataclass
class _Events:
    user: np.ndarray  # int32
    item: np.ndarray  # int32
    timestamp: np.ndarray  # int64 unix seconds
    event_type: np.ndarray  # int8 index into EVENT_TYPES
    value: np.ndarray  # float32, NaN where the type carries no value


def _rngs(seed: int) -> tuple[list[np.random.Generator], random.Random]:
    """Independent streams, so changing the wording never changes the behaviour data."""
    children = np.random.SeedSequence(seed).spawn(4)
    text_seed = int(children[3].generate_state(1)[0])
    return [np.random.default_rng(c) for c in children[:3]], random.Random(text_seed)


def _now_seconds(now: pd.Timestamp | str | float | None) -> int:
    if now is None:
        return int(time.time()) // DAY * DAY
    if isinstance(now, (int, float, np.integer, np.floating)):
        return int(now)
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.timestamp())


def _catalogue(rng: np.random.Generator, n_items: int, now: int) -> _Catalogue:
    """Topics, content types, publish dates (more recent ones), popularity, prices."""
    n_cells = len(TOPICS) * len(CONTENT_TYPES)
    if n_items < n_cells:
        raise ValueError(f"n_items must be at least {n_cells} (one per topic and content type)")
    cell_p = np.outer(TOPIC_SHARE, CATALOGUE_TYPE_SHARE).ravel()
    extra = rng.choice(n_cells, size=n_items - n_cells, p=cell_p)
    cells = rng.permutation(np.concatenate([np.arange(n_cells), extra]))
    age_s = (DAY + (CATALOGUE_DAYS - 1) * DAY * rng.random(n_items) ** 1.5).astype(np.int64)
    order = np.argsort(-age_s, kind="stable")  # ids follow publish order
    cells, published = cells[order], now - age_s[order]
    topic = (cells // len(CONTENT_TYPES)).astype(np.int16)
    ctype = (cells % len(CONTENT_TYPES)).astype(np.int8)
    popularity = (rng.permutation(n_items) + 1.0) ** -ZIPF_EXPONENT
    price = np.where(ctype == COURSE, rng.choice(COURSE_PRICES, size=n_items), 0.0)
    price = np.where(price > 0, price - (rng.random(n_items) < 0.3) * 0.01, price)  # some .99
    available = rng.random(n_items) >= UNAVAILABLE_SHARE
    return _Catalogue(
        topic, ctype, published, popularity, price, available, _episode_numbers(rng, topic, ctype)
    )


def _episode_numbers(rng: np.random.Generator, topic: np.ndarray, ctype: np.ndarray) -> np.ndarray:
    """Each topic's podcast numbers its episodes in publish order, after some older ones."""
    episode = np.zeros(len(topic), dtype=np.int32)
    is_podcast = ctype == PODCAST
    show = topic[is_podcast]
    order = np.argsort(show, kind="stable")  # items are in publish order already
    counts = np.bincount(show, minlength=len(TOPICS))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(show), dtype=np.int32)
    rank[order] = np.arange(len(show)) - np.repeat(starts, counts)
    first = rng.integers(5, 80, size=len(TOPICS))
    episode[is_podcast] = first[show] + rank
    return episode


def _affinity(table: dict[str, dict[str, float]], keys: tuple[str, ...]) -> np.ndarray:
    """A (len(keys), n_topics) matrix of topic log-odds nudges."""
    out = np.zeros((len(keys), len(TOPICS)))
    for row, key in enumerate(keys):
        for name, value in table.get(key, {}).items():
            out[row, TOPIC_NAMES.index(name)] = value
    return out


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of `alpha` (vectorised through Gamma draws)."""
    draws = rng.gamma(alpha)
    return draws / draws.sum(axis=1, keepdims=True)


def _audience(rng: np.random.Generator, n_users: int, mean_engagements: float) -> _Audience:
    """Attributes, favourite topics (attribute-nudged), content-type mix and activity."""
    age = rng.choice(len(AGE_GROUPS), size=n_users, p=AGE_SHARE).astype(np.int8)
    country = rng.choice(len(COUNTRIES), size=n_users, p=COUNTRY_SHARE).astype(np.int8)
    plan = rng.choice(len(PLANS), size=n_users, p=PLAN_SHARE).astype(np.int8)
    logits = (
        np.log(TOPIC_SHARE)
        + _affinity(AGE_TOPIC_AFFINITY, AGE_GROUPS)[age]
        + _affinity(COUNTRY_TOPIC_AFFINITY, COUNTRIES)[country]
        + _affinity(PLAN_TOPIC_AFFINITY, PLANS)[plan]
    )
    gumbel = -np.log(-np.log(rng.random(logits.shape)))
    ranked = np.argsort(-(logits + gumbel), axis=1)[:, :3]  # weighted draw without replacement
    count = rng.choice(3, size=n_users, p=FAVOURITE_COUNT_SHARE) + 1
    used = np.arange(3) < count[:, None]
    weights = np.where(used, rng.gamma(TASTE_ALPHA, size=(n_users, 3)), 0.0)
    weights = -np.sort(-weights, axis=1)  # the most attribute-aligned topic weighs most
    weights /= weights.sum(axis=1, keepdims=True)
    favourites = np.where(used, ranked, -1).astype(np.int16)
    alpha = TYPE_MIX_CONCENTRATION * BASE_TYPE_MIX * AGE_TYPE_FACTOR[age] * PLAN_TYPE_FACTOR[plan]
    type_mix = _dirichlet_rows(rng, alpha)
    activity = rng.lognormal(-(ACTIVITY_SIGMA**2) / 2, ACTIVITY_SIGMA, size=n_users)
    activity *= PLAN_ACTIVITY[plan] / (PLAN_ACTIVITY @ PLAN_SHARE)
    return _Audience(
        age,
        country,
        plan,
        favourites,
        weights.astype(np.float32),
        type_mix.astype(np.float32),
        mean_engagements * activity,
    )


def _expected_events() -> np.ndarray:
    """Expected events per engaged item: rows in taste / off taste, columns content types."""
    rows = []
    for factor, finish in ((1.0, FINISH_P[0]), (EXPLORE_FACTOR, FINISH_P[1])):
        deeper = (
            LIKE_P * factor
            + WATCH_P * (1 + finish)
            + READ_TO_END_P
            + PURCHASE_P * factor * (1 + COURSE_COMPLETE_P)
        )
        rows.append(1 + CLICK_P * factor * (1 + deeper))
    return np.array(rows)


def _engagements_per_user(events_per_user: float) -> float:
    """Engagements to draw per user for an event budget, with room to thin down to it."""
    table = _expected_events()
    per_type = (1 - EXPLORE_SHARE) * table[0] + EXPLORE_SHARE * table[1]
    return OVERSUPPLY * events_per_user / float(per_type @ BASE_TYPE_MIX)


def _pick_column(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of `rows`, a column index drawn from that row of `probs`."""
    cumulative = np.cumsum(probs, axis=1)
    cumulative /= cumulative[:, -1:]  # exactly 1 from the last used column on, so u < 1 stops
    u = rng.random(len(rows), dtype=np.float32)
    picked = np.zeros(len(rows), dtype=np.int8)
    for col in range(probs.shape[1] - 1):  # a loop over columns, not rows
        picked += u > cumulative[rows, col]
    return picked


def _item_sampler(catalogue: _Catalogue, now: int) -> tuple[np.ndarray, np.ndarray]:
    """Items sorted by (topic, type) cell and a key whose cell c part runs over (c, c + 1].

    Searching `cell + u` (u uniform in [0, 1)) in the key draws an item of that cell with
    probability proportional to popularity x time on sale in the window x a recency boost.
    """
    age_days = (now - catalogue.published_at) / DAY
    exposure = np.minimum(age_days / WINDOW_DAYS, 1.0)
    boost = 1 + RECENCY_BOOST * np.exp(-age_days / RECENCY_DAYS)
    weight = catalogue.popularity * exposure * boost
    cell = catalogue.topic.astype(np.int64) * len(CONTENT_TYPES) + catalogue.ctype
    order = np.argsort(cell, kind="stable")
    cell, weight = cell[order], weight[order]
    totals = np.bincount(cell, weights=weight, minlength=len(TOPICS) * len(CONTENT_TYPES))
    before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    within = (np.cumsum(weight) - before[cell]) / totals[cell]
    last = np.r_[cell[1:] != cell[:-1], True]
    within[last] = 1.0
    return order.astype(np.int32), cell + within


def _events(
    rng: np.random.Generator,
    audience: _Audience,
    catalogue: _Catalogue,
    now: int,
    n_events: float,
) -> _Events:
    """Engagements (user, topic, type, item, time) run through the funnel.

    The engagements are thinned at random so that the expected number of events is `n_events`
    (thinning a Poisson count leaves it Poisson, so the users' activity keeps its shape).
    """
    n_users = len(audience.age)
    user = np.repeat(np.arange(n_users, dtype=np.int32), rng.poisson(audience.engagements))
    favourite = audience.favourites[user, _pick_column(rng, audience.weights, user)]
    explore = rng.random(len(user)) < EXPLORE_SHARE
    wander = rng.choice(len(TOPICS), size=len(user), p=TOPIC_SHARE).astype(np.int16)
    topic = np.where(explore, wander, favourite)
    ctype = _pick_column(rng, audience.type_mix, user)
    in_taste = (audience.favourites[user] == topic[:, None]).any(axis=1)
    expected = _expected_events()[(~in_taste).astype(np.int8), ctype].sum()
    keep = rng.random(len(user)) < n_events / max(expected, 1.0)
    user, topic, ctype, in_taste = user[keep], topic[keep], ctype[keep], in_taste[keep]
    order, key = _item_sampler(catalogue, now)
    cell = topic.astype(np.int64) * len(CONTENT_TYPES) + ctype
    item = order[np.searchsorted(key, cell + rng.random(len(user)), side="right")]
    start = np.maximum(now - WINDOW_DAYS * DAY, catalogue.published_at[item] + HOUR)
    end = now - 3 * HOUR  # room for the rest of the funnel
    seen = start + ((end - start) * rng.random(len(user)) ** 0.8).astype(np.int64)
    return _funnel(rng, user, item, seen, in_taste, catalogue, now)


def _funnel(
    rng: np.random.Generator,
    user: np.ndarray,
    item: np.ndarray,
    seen: np.ndarray,
    in_taste: np.ndarray,
    catalogue: _Catalogue,
    now: int,
) -> _Events:
    """view -> click -> like / watch (-> complete) / read to end / purchase (-> complete)."""
    ctype = catalogue.ctype[item]
    factor = np.where(in_taste, 1.0, EXPLORE_FACTOR)
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | None]] = [
        (np.arange(len(user)), seen, VIEW, None)
    ]

    def follow(mask: np.ndarray, after: np.ndarray, low: int, high: int) -> np.ndarray:
        return after[mask] + rng.integers(low, high, size=int(mask.sum()))

    clicked = rng.random(len(user)) < CLICK_P[ctype] * factor
    click_at = seen.copy()
    click_at[clicked] = follow(clicked, seen, 5, 120)
    parts.append((np.flatnonzero(clicked), click_at[clicked], CLICK, None))
    liked = clicked & (rng.random(len(user)) < LIKE_P[ctype] * factor)
    parts.append((np.flatnonzero(liked), follow(liked, click_at, 60, 1800), LIKE, None))

    watched = clicked & (rng.random(len(user)) < WATCH_P[ctype])
    finished = watched & (rng.random(len(user)) < np.where(in_taste, *FINISH_P))
    fraction = np.where(finished, 1.0, 0.95 * rng.beta(2.0, 3.0, size=len(user)))
    watch_at = click_at.copy()
    watch_at[watched] = follow(watched, click_at, 10, 60)
    parts.append(
        (np.flatnonzero(watched), watch_at[watched], WATCH, np.round(fraction[watched], 3))
    )
    parts.append((np.flatnonzero(finished), follow(finished, watch_at, 300, 3600), COMPLETE, None))

    read = clicked & (rng.random(len(user)) < READ_TO_END_P[ctype])
    parts.append((np.flatnonzero(read), follow(read, click_at, 60, 900), COMPLETE, None))

    bought = clicked & (rng.random(len(user)) < PURCHASE_P[ctype] * factor)
    buy_at = click_at.copy()
    buy_at[bought] = follow(bought, click_at, 60, 1800)
    parts.append((np.flatnonzero(bought), buy_at[bought], PURCHASE, catalogue.price[item[bought]]))
    done = bought & (rng.random(len(user)) < COURSE_COMPLETE_P)
    done_at = np.minimum(follow(done, buy_at, DAY, 45 * DAY), now - 60)
    parts.append((np.flatnonzero(done), done_at, COMPLETE, None))
    return _assemble(parts, user, item)


def _assemble(
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | None]],
    user: np.ndarray,
    item: np.ndarray,
) -> _Events:
    """Concatenate the funnel's parts and sort them by user, time and funnel step."""
    rows = np.concatenate([p[0] for p in parts])
    stamps = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kinds = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    values = np.concatenate(
        [
            np.full(len(p[0]), np.nan, dtype=np.float32)
            if p[3] is None
            else p[3].astype(np.float32)
            for p in parts
        ]
    )
    users = user[rows]
    base = stamps.min() if len(stamps) else 0
    sort_key = ((users.astype(np.int64) << 27 | (stamps - base)) << 3) | kinds
    order = np.argsort(sort_key)
    return _Events(users[order], item[rows[order]], stamps[order], kinds[order], values[order])


# ----------------------------------------------------------------------------- text and frames
def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}-{i:05d}" for i in range(1, n + 1)], dtype=object)


def _title_case(phrase: str) -> str:
    """Capitalise words except small ones; words that already have capitals (SQL) stay as is."""
    words = phrase.split(" ")
    return " ".join(
        w if w in SMALL_WORDS or w != w.lower() else w[:1].upper() + w[1:] for w in words
    )


def _cap_starts(title: str) -> str:
    """Capitalise the first letter of the title and after a colon."""
    return re.sub(r"(^|: )([a-z])", lambda m: m.group(1) + m.group(2).upper(), title)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _tag_list(tags: list[str]) -> str:
    return ", ".join(tags[:-1]) + " and " + tags[-1] if len(tags) > 1 else tags[0]


class _ItemText(NamedTuple):
    title: str
    description: str
    tags: list[str]


def _item_text(
    rnd: random.Random, catalogue: _Catalogue, index: int, describe: bool = True
) -> _ItemText:
    """Title, description (unless `describe` is false) and tags from the topic's vocabulary."""
    topic = TOPICS[catalogue.topic[index]]
    ctype = CONTENT_TYPES[catalogue.ctype[index]]
    subject = rnd.choice(topic.subjects)
    level = rnd.choices(LEVELS, weights=LEVEL_SHARE)[0]
    tags = rnd.sample(topic.tags, k=rnd.randint(3, 5))
    words = {
        "subject": _title_case(subject),
        "bare": _title_case(subject.removeprefix("the ")),
        "task": _title_case(rnd.choice(topic.tasks)),
        "n": rnd.choice((3, 5, 7, 9, 10, 12)),
        "minutes": rnd.choice((5, 8, 10, 12, 15, 20)),
        "weeks": rnd.choice((2, 4, 6, 8)),
        "episode": int(catalogue.episode[index]),
        "show": topic.show,
        "guest": f"{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}",
    }
    title = _cap_starts(rnd.choice(TITLE_TEMPLATES[ctype]).format(**words))
    description = ""
    if describe:
        words.update(
            subject=subject,
            audience=rnd.choice(topic.audiences),
            a_level=A_LEVEL[level],
            tag_list=_tag_list(tags[:3]),
            host=rnd.choice(FIRST_NAMES),
        )
        description = rnd.choice(DESCRIPTION_TEMPLATES[ctype]).format(**words)
    return _ItemText(title, description, [*tags, level])


def _items_frame(rnd: random.Random, catalogue: _Catalogue, item_ids: np.ndarray) -> pd.DataFrame:
    texts = [_item_text(rnd, catalogue, i) for i in range(len(item_ids))]
    types = [CONTENT_TYPES[c] for c in catalogue.ctype]
    urls = [
        f"https://example.com/{URL_SECTION[kind]}/{_slug(t.title)}-{i}"
        for i, (kind, t) in enumerate(zip(types, texts, strict=True), start=1)
    ]
    return pd.DataFrame(
        {
            "ITEM_ID": item_ids,
            "TITLE": [t.title for t in texts],
            "DESCRIPTION": [t.description for t in texts],
            "URL": urls,
            "IMAGE_URL": [
                f"https://images.example.com/{URL_SECTION[k]}/{i}.jpg"
                for k, i in zip(types, item_ids, strict=True)
            ],
            "CATEGORIES": [f"{TOPICS[t].name}|{TOPICS[t].area}" for t in catalogue.topic],
            "TAGS": ["|".join(t.tags) for t in texts],
            "CONTENT_TYPE": types,
            "PUBLISHED_AT": catalogue.published_at,
            "PRICE": np.round(catalogue.price, 2),
            "AVAILABLE": catalogue.available,
        }
    )


def _users_frame(rnd: random.Random, audience: _Audience, user_ids: np.ndarray) -> pd.DataFrame:
    n = len(user_ids)
    emails = [
        f"{rnd.choice(FIRST_NAMES)}.{rnd.choice(LAST_NAMES)}{i}@example.com".lower()
        for i in range(1, n + 1)
    ]
    opt_in = np.array([rnd.random() for _ in range(n)]) < PLAN_OPT_IN[audience.plan]
    return pd.DataFrame(
        {
            "USER_ID": user_ids,
            "EMAIL": emails,
            "EMAIL_OPT_IN": opt_in,
            "AGE_GROUP": np.asarray(AGE_GROUPS, dtype=object)[audience.age],
            "COUNTRY": np.asarray(COUNTRIES, dtype=object)[audience.country],
            "PLAN": np.asarray(PLANS, dtype=object)[audience.plan],
        }
    )


def _interactions_frame(
    events: _Events, user_ids: np.ndarray, item_ids: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "USER_ID": user_ids[events.user],
            "ITEM_ID": item_ids[events.item],
            "TIMESTAMP": events.timestamp,
            "EVENT_TYPE": np.asarray(EVENT_TYPES, dtype=object)[events.event_type],
            "EVENT_VALUE": events.value.astype(np.float64).round(3),
        }
    )


def _tastes_frame(
    audience: _Audience, user_ids: np.ndarray, categorical: bool = False
) -> pd.DataFrame:
    used = audience.favourites >= 0
    rows = np.nonzero(used)[0]
    codes = audience.favourites[used]
    topic = (
        pd.Categorical.from_codes(codes, TOPIC_NAMES)
        if categorical
        else np.asarray(TOPIC_NAMES, dtype=object)[codes]
    )
    weight = audience.weights[used]
    return pd.DataFrame(
        {
            "user_id": user_ids[rows],
            "topic": topic,
            "weight": weight if categorical else weight.astype(np.float64).round(4),
        }
    )


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as lowercase true/false, as Personalize's CSVs spell them."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_bool_dtype(out[column]):
            out[column] = np.where(out[column], "true", "false")
    return out
