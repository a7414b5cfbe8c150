"""Deterministic, seeded brand mentions for the fictional telecom and online shop "Acme Mobile".

Stdlib only. `FeedGenerator(seed).posts(n)` yields English and German posts: complaints about
delivery, billing and outages, praise, questions, spam, follow-ups from the same customer, replies
in conversations (the brand's support account @acme_help answers, customers answer back) and
retweets. `customer_pool()` is the shared cast of customers; some of them also exist "on Facebook"
(`Customer.facebook_name`), so a Facebook emulator can reuse the same people.

Fast enough for benchmarks: well over 50,000 posts per second.
"""

from __future__ import annotations

import random
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace

BRAND_NAME = "Acme Mobile"
BRAND_HANDLE = "acme"
SUPPORT_HANDLE = "acme_help"
OWN_HANDLES = (BRAND_HANDLE, SUPPORT_HANDLE)

CATEGORIES = ("delivery", "billing", "outage", "praise", "question", "spam", "followup", "brand_reply",
              "retweet")


@dataclass(frozen=True, slots=True)
class Customer:
    """A person (or spammer) who writes about the brand."""

    index: int
    handle: str  # X username, without "@"
    display_name: str
    followers: int
    following: int
    lang: str  # "en" or "de"
    facebook_name: str | None  # the name of their Facebook profile, None if not on Facebook
    is_spammer: bool = False


@dataclass(frozen=True, slots=True)
class FeedPost:
    """One generated post. `reply_to` / `retweet_of` are `seq` numbers of earlier posts of the same feed."""

    seq: int
    author: str  # customer handle, or SUPPORT_HANDLE for the brand's replies
    text: str
    lang: str
    category: str
    customer: Customer | None  # None for the brand's own posts
    reply_to: int | None = None
    retweet_of: int | None = None
    gap_s: float = 1.0  # seconds since the previous post
    template: str = ""  # the wording it was generated from (bench/suggest.py holds some wordings out)


# Sixty first and fifty last names per language: same-name strangers occur about as often as in a
# real audience of a few thousand, so link proposals stay mostly true pairs (tests/responders).
_FIRST = {
    "en": ["Sarah", "James", "Emily", "Michael", "Olivia", "Daniel", "Chloe", "Ryan", "Priya", "Tom",
           "Aisha", "Lucas", "Grace", "Omar", "Hannah", "Jack", "Mia", "Noah", "Zoe", "Liam",
           "Amelia", "Ethan", "Isla", "Oliver", "Ava", "Harry", "Freya", "George", "Sophie", "Charlie",
           "Ruby", "Oscar", "Ella", "Leo", "Lily", "Arthur", "Evie", "Henry", "Poppy", "Theo",
           "Jasmine", "Samuel", "Maya", "Adam", "Layla", "Joseph", "Imogen", "Rohan", "Niamh", "Kofi",
           "Megan", "Callum", "Fatima", "Connor", "Bethany", "Dylan", "Keisha", "Mateo", "Yuki", "Aaron"],
    "de": ["Jörg", "Anna", "Lukas", "Sophie", "Jürgen", "Lea", "Maximilian", "Katrin", "Björn",
           "Leonie", "Stefan", "Märta", "Felix", "Sabine", "Tobias", "Jana", "Uwe", "Ayşe", "Finn", "Heike",
           "Jonas", "Laura", "Paul", "Marie", "Elias", "Hanna", "Niklas", "Emma", "Moritz", "Lina",
           "Florian", "Johanna", "Sebastian", "Clara", "Matthias", "Greta", "Andreas", "Frieda", "Kai", "Ida",
           "Dieter", "Ute", "Thorsten", "Birgit", "Hans", "Renate", "Volker", "Petra", "Emre", "Elif",
           "Malte", "Svenja", "Jannik", "Nele", "Fabian", "Carina", "Dominik", "Anja", "Till", "Zeynep"],
}
_LAST = {
    "en": ["Miller", "Smith", "Johnson", "Brown", "Patel", "Walker", "O'Neill", "Nguyen", "Clarke",
           "Evans", "Khan", "Turner", "Hughes", "Wright", "Lee", "Murphy", "Taylor", "Davies", "Wilson",
           "Robinson", "Thompson", "White", "Edwards", "Green", "Hall", "Wood", "Harris", "Martin",
           "Jackson", "Cooper", "Ward", "Morris", "King", "Baker", "Harrison", "Morgan", "Allen", "James",
           "Scott", "Phillips", "Watson", "Davis", "Parker", "Bennett", "Young", "Price", "Mensah", "Okafor",
           "Singh", "Fraser"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weiß", "Becker", "Schäfer", "Koch", "Wagner",
           "Hoffmann", "Krüger", "Yılmaz", "Lehmann", "Groß", "Köhler", "Bauer", "Meyer", "Wolf",
           "Schulz", "Neumann", "Schwarz", "Zimmermann", "Braun", "Hofmann", "Hartmann", "Lange", "Werner",
           "Krause", "Meier", "Schmitz", "Schulze", "Maier", "Huber", "Kaiser", "Fuchs", "Peters", "Lang",
           "Scholz", "Möller", "Weber", "Jung", "Hahn", "Vogel", "Keller", "Günther", "Frank", "Berger",
           "Winkler", "Roth", "Kaya"],
}
_DECOR = ["", "", "", "", " 🌻", " 🚀", " ☕", " ⚽", " 🎧"]
_SPAM_NAMES = ["Free Phones 4U", "Crypto Gains Daily", "Gewinnspiel Zentrale", "Deals Deals Deals",
               "iPhone Giveaway", "Follow Back Team"]

_PRODUCTS = ["Galaxy S25", "iPhone 17", "Pixel 10", "SIM card", "eSIM", "5G router", "prepaid card",
             "Fairphone 6", "charger", "smartwatch"]
_CITIES = {"en": ["London", "Manchester", "Dublin", "Bristol", "Leeds", "Glasgow", "Cardiff", "Berlin"],
           "de": ["Berlin", "Hamburg", "München", "Köln", "Leipzig", "Frankfurt", "Dresden", "Bremen"]}
_BRAND_REFS = ["@acme", "@acme", "@acme", "@acme_help", "Acme", "Acme Mobile", "#AcmeMobile", "@acme"]

_T: dict[tuple[str, str], list[str]] = {
    ("en", "delivery"): [
        "{b} my order {o} was supposed to arrive {d} days ago. Where is my {p}?",
        "Still waiting for my {p} from {b}. Tracking hasn't moved in {d} days. Order {o}",
        "{b} courier says delivered, nothing at my door in {c}. Order {o} 😡",
        "Ordered a {p} from {b}, got an empty box. Seriously?! {o}",
        "Day {d} of waiting for {b} to ship my {p}. Nobody answers the hotline.",
        "{b} why does delivery to {c} take {d} days? Order {o}",
    ],
    ("en", "billing"): [
        "{b} you charged me {a} twice this month. Please refund!",
        "Why is my {b} bill {a} higher than my contract says? Account {o}",
        "{b} cancelled my contract {d} weeks ago and you still take {a} every month",
        "Surprise roaming fee of {a} from {b}. I was at home in {c} the whole time!",
        "{b} direct debit failed and now a {a} late fee? Not my fault.",
    ],
    ("en", "outage"): [
        "{b} no signal in {c} since this morning. Is there an outage?",
        "Is {b} down? Mobile data not working in {c} for {d} hours",
        "{b} 5G keeps dropping in {c}. Paying for nothing.",
        "Third outage this week {b}. Working from home in {c} is impossible.",
        "{b} calls fail constantly in {c}, internet super slow. Anyone else?",
    ],
    ("en", "praise"): [
        "Shoutout to {b}, my {p} arrived a day early! 🙌",
        "{b} support sorted my billing issue in 5 minutes. Impressed!",
        "Switched to {b} and the 5G in {c} is amazing ❤️",
        "Great service from {b} today, thanks for the quick {p} swap",
        "Honestly {b} has the best customer service I've had in years",
    ],
    ("en", "question"): [
        "{b} does the {p} work with my current plan?",
        "Hey {b}, how do I activate my eSIM on a {p}?",
        "{b} when will 5G be available in {c}?",
        "Can I change my {b} contract online or do I need to call?",
        "{b} is the {p} back in stock anytime soon?",
    ],
    ("en", "followup"): [
        "@acme_help still nothing. Order {o}. This is getting ridiculous.",
        "@acme_help thanks, DM sent.",
        "@acme_help that didn't help at all, still no signal in {c}",
        "@acme_help ok it works now, thank you! 👍",
        "@acme_help I did that already. {d} days now.",
        "Update: {b} still hasn't fixed it. Day {d}.",
    ],
    ("en", "brand_reply"): [
        "Sorry about that! Please DM us your order number and we'll look into it right away. ^Sam",
        "We're sorry for the trouble. Our team in {c} is working on it. ^Kim",
        "Thanks for reaching out! Please send us a DM with your account number. ^Alex",
        "Thanks for the kind words! 💙 ^Sam",
        "Good question! You can check that in the Acme app under My Plan. ^Kim",
    ],
    ("de", "delivery"): [
        "{b} meine Bestellung {o} sollte vor {d} Tagen ankommen. Wo ist mein {p}?",
        "Warte immer noch auf mein {p} von {b}. Sendungsverfolgung seit {d} Tagen unverändert. {o}",
        "{b} laut Paketdienst zugestellt, in {c} kam nichts an. Bestellung {o} 😡",
        "{b} Lieferung nach {c} dauert jetzt schon {d} Tage. Unmöglich!",
        "Leeres Paket von {b} bekommen statt {p}. Bestellung {o}",
    ],
    ("de", "billing"): [
        "{b} ihr habt mir diesen Monat {a} doppelt abgebucht. Bitte erstatten!",
        "Warum ist meine {b} Rechnung {a} höher als im Vertrag? Kundennummer {o}",
        "{b} Vertrag vor {d} Wochen gekündigt und ihr bucht immer noch {a} ab",
        "Roaminggebühren von {a} bei {b}, obwohl ich in {c} war. Frechheit.",
    ],
    ("de", "outage"): [
        "{b} seit heute Morgen kein Netz in {c}. Gibt es eine Störung?",
        "Ist {b} down? Mobiles Internet geht in {c} seit {d} Stunden nicht",
        "{b} 5G bricht in {c} ständig ab. Zahle für nichts.",
        "Dritte Störung diese Woche {b}. Homeoffice in {c} unmöglich.",
    ],
    ("de", "praise"): [
        "Danke {b}, mein {p} kam einen Tag früher! 🙌",
        "{b} Kundenservice hat mein Problem in 5 Minuten gelöst. Top!",
        "Zu {b} gewechselt und 5G in {c} ist super ❤️",
        "Wirklich toller Service von {b} heute, danke!",
    ],
    ("de", "question"): [
        "{b} funktioniert das {p} mit meinem aktuellen Tarif?",
        "Hallo {b}, wie aktiviere ich die eSIM auf dem {p}?",
        "{b} wann kommt 5G nach {c}?",
        "Kann ich meinen {b} Vertrag online ändern?",
    ],
    ("de", "followup"): [
        "@acme_help immer noch nichts. Bestellung {o}. Langsam reicht es.",
        "@acme_help danke, DM ist raus.",
        "@acme_help hat nicht geholfen, weiterhin kein Netz in {c}",
        "@acme_help jetzt geht es, vielen Dank! 👍",
        "Update: {b} hat es immer noch nicht gelöst. Tag {d}.",
    ],
    ("de", "brand_reply"): [
        "Das tut uns leid! Schick uns bitte per DM deine Bestellnummer, wir kümmern uns. ^Lena",
        "Entschuldige die Störung. Unser Team in {c} arbeitet daran. ^Jan",
        "Danke für deine Nachricht! Bitte schick uns eine DM mit deiner Kundennummer. ^Lena",
        "Danke für das Lob! 💙 ^Jan",
    ],
}
_SPAM = [
    "🔥 WIN a free {p}!! Follow + RT {b} #giveaway 👉 bit.ly/{s}",
    "Make $5000/week from home, ask me how {b} #crypto bit.ly/{s}",
    "Gratis {p} abholen! Nur heute {b} 👉 bit.ly/{s}",
    "{b} cheap followers 10k for $5 DM now",
]
_NEW_TOPICS = ("delivery", "delivery", "billing", "billing", "outage", "outage", "praise", "question",
               "question")


def _ascii(text: str) -> str:
    text = text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = text.replace("Ä", "Ae").replace("Ö", "Oe").replace("Ü", "Ue")
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if ch.isascii() and (ch.isalnum()))


def customer_pool(seed: int = 0, size: int = 500) -> list[Customer]:
    """A deterministic cast of `size` customers (about 30% German, 40% also on Facebook, 2% spammers)."""
    rng = random.Random(f"customers-{seed}")
    customers: list[Customer] = []
    seen: set[str] = set()
    for index in range(size):
        spammer = rng.random() < 0.02
        lang = "de" if rng.random() < 0.3 else "en"
        if spammer:
            name = rng.choice(_SPAM_NAMES)
            base = _ascii(name).lower()[:11]
        else:
            first, last = rng.choice(_FIRST[lang]), rng.choice(_LAST[lang])
            name = f"{first} {last}"
            style = rng.randrange(3)
            ascii_first, ascii_last = _ascii(first), _ascii(last)
            base = (ascii_first + ascii_last if style == 0 else
                    ascii_first + "_" + ascii_last[:6] if style == 1 else ascii_first[:1] + ascii_last)
            base = base.lower()[:11]
        handle = base
        while handle in seen or handle in OWN_HANDLES:
            handle = f"{base}{rng.randrange(10, 9999)}"
        seen.add(handle)
        display = name + rng.choice(_DECOR)
        followers = 0 if spammer else min(int(rng.paretovariate(1.1) * 40), 2_000_000)
        facebook_name: str | None = None
        if not spammer and rng.random() < 0.4:
            variant = rng.randrange(3)
            parts = name.split(" ")
            facebook_name = (name if variant == 0 else
                             f"{parts[0]} {parts[-1][:1]}." if variant == 1 else
                             f"{_ascii(parts[0])} {_ascii(parts[-1])}")
        customers.append(Customer(index, handle, display, followers, rng.randrange(20, 900), lang,
                                  facebook_name, spammer))
    return customers


@dataclass(slots=True)
class _Thread:
    seq: int
    customer: Customer
    category: str
    answered_by: int | None = None  # seq of the brand's reply


class FeedGenerator:
    """A seeded, endless stream of brand posts. Same seed, same posts."""

    def __init__(self, seed: int = 0, customers: list[Customer] | None = None) -> None:
        self.seed = seed
        self.customers = customers if customers is not None else customer_pool(seed)
        self._regular = [c for c in self.customers if not c.is_spammer] or self.customers
        self._spammers = [c for c in self.customers if c.is_spammer] or self.customers
        self._rng = random.Random(f"feed-{seed}")
        self._seq = 0
        self._open: deque[_Thread] = deque(maxlen=300)  # recent complaints and questions
        self._answered: deque[_Thread] = deque(maxlen=300)  # threads the brand has answered
        self._recent: deque[FeedPost] = deque(maxlen=50)  # retweet candidates

    def posts(self, n: int) -> list[FeedPost]:
        """The next `n` posts of the stream."""
        return [self.next_post() for _ in range(n)]

    def stream(self) -> Iterator[FeedPost]:
        """The stream as an endless iterator."""
        while True:
            yield self.next_post()

    def next_post(self) -> FeedPost:
        """Generate one post."""
        rng = self._rng
        roll = rng.random()
        post: FeedPost | None = None
        if roll < 0.14 and self._open:
            post = self._brand_reply()
        elif roll < 0.24 and self._answered:
            post = self._followup()
        elif roll < 0.28 and self._recent:
            post = self._retweet()
        elif roll < 0.33:
            post = self._make(rng.choice(self._spammers), "spam", rng.choice(_SPAM))
        if post is None:
            customer = rng.choice(self._regular)
            category = rng.choice(_NEW_TOPICS)
            post = self._make(customer, category, rng.choice(_T[customer.lang, category]))
            if category in ("delivery", "billing", "outage", "question"):
                self._open.append(_Thread(post.seq, customer, category))
            if customer.followers > 500:
                self._recent.append(post)
        return post

    # -- kinds of posts -------------------------------------------------------------------------

    def _brand_reply(self) -> FeedPost:
        thread = self._open.popleft() if self._rng.random() < 0.7 else self._open.pop()
        lang = thread.customer.lang
        text = f"@{thread.customer.handle} " + self._fill(self._rng.choice(_T[lang, "brand_reply"]), lang)
        post = self._emit(SUPPORT_HANDLE, text, lang, "brand_reply", None, reply_to=thread.seq)
        thread.answered_by = post.seq
        self._answered.append(thread)
        return post

    def _followup(self) -> FeedPost:
        thread = self._answered.popleft()
        customer = thread.customer
        text = self._fill(self._rng.choice(_T[customer.lang, "followup"]), customer.lang)
        reply_to = thread.answered_by if text.startswith("@acme_help") else None
        if reply_to is None:
            reply_to = thread.seq  # a self-reply: "Update: still broken"
        post = self._emit(customer.handle, text, customer.lang, "followup", customer, reply_to=reply_to)
        if self._rng.random() < 0.5:
            self._open.append(_Thread(post.seq, customer, thread.category))
        return post

    def _retweet(self) -> FeedPost:
        original = self._rng.choice(self._recent)
        customer = self._rng.choice(self._regular)
        text = f"RT @{original.author}: {original.text}"
        return self._emit(customer.handle, text, original.lang, "retweet", customer, retweet_of=original.seq)

    def _make(self, customer: Customer, category: str, template: str) -> FeedPost:
        text = self._fill(template, customer.lang)
        return replace(self._emit(customer.handle, text, customer.lang, category, customer), template=template)

    def _emit(self, author: str, text: str, lang: str, category: str, customer: Customer | None,
              reply_to: int | None = None, retweet_of: int | None = None) -> FeedPost:
        seq = self._seq
        self._seq += 1
        return FeedPost(seq, author, text, lang, category, customer, reply_to, retweet_of,
                        round(self._rng.expovariate(1.0), 3))

    def _fill(self, template: str, lang: str) -> str:
        rng = self._rng
        rand = rng.random
        return template.format(
            b=_BRAND_REFS[int(rand() * 8)],
            o=f"A{int(rand() * 9_000_000) + 1_000_000}",
            d=int(rand() * 12) + 2,
            p=_PRODUCTS[int(rand() * 10)],
            c=_CITIES[lang][int(rand() * 8)],
            a=f"€{int(rand() * 90) + 9},{int(rand() * 100):02d}",
            s=f"{int(rand() * 0xFFFFFF):06x}",
        )
