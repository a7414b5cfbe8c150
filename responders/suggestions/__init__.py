"""Suggested replies: the team's own past answers to similar mentions, and fitting saved replies.

    index.py    the in-process int8 index of each brand's answered mentions (AnswerIndex)
    suggest.py  the ranked cards for one mention (suggest)
    drafts.py   order numbers in mentions; a past answer adapted for a new customer
"""

from responders.suggestions.drafts import adapt_answer, order_number
from responders.suggestions.index import AnswerIndex
from responders.suggestions.suggest import PastAnswer, Suggestion, suggest

__all__ = ["AnswerIndex", "PastAnswer", "Suggestion", "adapt_answer", "order_number", "suggest"]
