"""The demo team's saved replies: one per (language, topic) of the generated feed (feed.py).

`make demo` seeds them, and bench/suggest.py answers the first part of a feed with the saved reply of
each mention's topic to check that suggestions bring that reply back for the rest.
"""

from __future__ import annotations

SAVED_REPLIES: dict[tuple[str, str], tuple[str, str]] = {
    ("en", "delivery"): ("Late delivery", "Hi {name}, sorry your order {order} is late! We have asked the courier "
                                          "and will DM you the new delivery date today. ^{agent}"),
    ("en", "billing"): ("Billing error", "Hi {name}, sorry about the wrong charge on your bill. Please DM us your "
                                         "account number and we will refund what we took by mistake. ^{agent}"),
    ("en", "outage"): ("Network outage", "Hi {name}, there is a network fault in your area and our engineers are "
                                         "on site. We will let you know as soon as the signal is back. ^{agent}"),
    ("en", "praise"): ("Thanks for the praise", "Thank you so much, {name}! We are glad you are happy with "
                                                "{brand}. 💙 ^{agent}"),
    ("en", "question"): ("Product question", "Hi {name}, good question! You find this in the Acme app under "
                                             "My Plan, or DM us and we check it for you. ^{agent}"),
    ("de", "delivery"): ("Lieferverzug", "Hallo {name}, es tut uns leid, dass deine Bestellung {order} noch nicht "
                                         "da ist! Wir fragen beim Paketdienst nach und melden uns heute per DM. "
                                         "^{agent}"),
    ("de", "billing"): ("Rechnungsfehler", "Hallo {name}, entschuldige die falsche Abbuchung. Schick uns bitte per "
                                           "DM deine Kundennummer, wir erstatten den Betrag. ^{agent}"),
    ("de", "outage"): ("Netzstörung", "Hallo {name}, in deiner Region gibt es eine Netzstörung, unsere Technik "
                                      "arbeitet daran. Wir melden uns, sobald alles wieder läuft. ^{agent}"),
    ("de", "praise"): ("Danke für das Lob", "Vielen Dank, {name}! Schön, dass du mit {brand} zufrieden bist. 💙 "
                                            "^{agent}"),
    ("de", "question"): ("Produktfrage", "Hallo {name}, gute Frage! Das findest du in der Acme-App unter Mein "
                                         "Tarif, oder schreib uns per DM und wir schauen nach. ^{agent}"),
}
