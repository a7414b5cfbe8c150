"""Customer memory: one person across platforms.

    links.py     proposing, confirming and rejecting links between authors; link, unlink, merge by hand
    identity.py  the evidence: name keys, handles, profile links quoted in posts, scored pairs
    overview.py  what the team sees about one customer; search; `x:@handle`-style references
    gdpr.py      export and erasure of everything about one person

Notes and tags on customers follow the one rule of responders.notes; re-ranking a customer's open
items after a link is responders.queue.intake.Intake.rerank_customer.
"""

from responders.customers.links import (
    CONFIRMED,
    MIN_CONFIDENCE,
    PROPOSED,
    REJECTED,
    PendingLink,
    confirm,
    customer_of,
    link_authors,
    merge_customers,
    pending_for,
    pending_links,
    propose_links,
    reject,
    unlink_author,
)

__all__ = [
    "CONFIRMED", "MIN_CONFIDENCE", "PROPOSED", "REJECTED", "PendingLink", "confirm", "customer_of", "link_authors",
    "merge_customers", "pending_for", "pending_links", "propose_links", "reject", "unlink_author",
]
