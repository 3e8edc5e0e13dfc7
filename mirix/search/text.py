"""Turning free text into search terms: the same words reach FTS5 and PostgreSQL.

Only letters and digits survive, so nothing a caller types can become query syntax. English
stop words are dropped (BM25 with stop words removed retrieves better on conversational
questions). The databases stem with their own English analyzers; ``stems`` does the same for the
in-process BM25 index (``mirix.search.text_index``), for documents and queries alike.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import Stemmer

MAX_TERMS = 32
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been before being
    below between both but by can cannot could couldn did didn do does doesn doing don down during each
    few for from further had hadn has hasn have haven having he her here hers herself him himself his how
    i if in into is isn it its itself just let me more most mustn my myself no nor not now of off on once
    only or other ought our ours ourselves out over own same shan she should shouldn so some such than
    that the their theirs them themselves then there these they this those through to too under until up
    very was wasn we were weren what when where which while who whom why will with won would wouldn you
    your yours yourself yourselves s t d ll m re ve y also ever did does
    """.split()
)


def search_terms(text: str, *, keep_stop_words: bool = False) -> list[str]:
    """Distinct lower-case words of ``text`` in order, stop words removed, at most 32."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if keep_stop_words or word not in STOP_WORDS:
            seen.setdefault(word, None)
        if len(seen) >= MAX_TERMS:
            break
    terms = list(seen)
    if not terms and not keep_stop_words:
        # A question made only of stop words ("who is she?") still deserves an answer.
        return search_terms(text, keep_stop_words=True)
    return terms


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _fold(text: str) -> str:
    """Lower case without diacritics ("Café" and "cafe" are one word), like FTS5's unicode61."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def stems(text: str) -> list[str]:
    """The English stems of ``text``'s words, stop words left out, in order and with repeats."""
    words = [word for word in _WORD.findall(_fold(text)) if word not in STOP_WORDS]
    return _stemmer().stemWords(words) if words else []


def query_stems(text: str) -> list[str]:
    """The distinct stems of a query's search terms; empty when the query has only stop words."""
    words = [word for word in search_terms(_fold(text)) if word not in STOP_WORDS]
    return list(dict.fromkeys(_stemmer().stemWords(words))) if words else []
