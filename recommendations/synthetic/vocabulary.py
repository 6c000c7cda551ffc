"""The publisher's topics and the words its titles, descriptions and names are made of."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
