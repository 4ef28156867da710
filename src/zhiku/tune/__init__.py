"""``zhiku tune``: the corpus teaches its own retriever.

- ``questions.py``: synthetic questions from the KB's own chunks (offline pseudo-questions, or an
  LLM's), filtered, de-duplicated and split by document into train / validation;
- ``adapter.py``: a query-side adapter on top of a built vector method (chunk vectors unchanged);
- ``compare.py``: before/after evaluation and the paired test that decides whether a tuned method
  may become the KB's default;
- ``route.py``: the KB's default method (or hybrid weights, or a query router) chosen on validation.

Nothing here is imported by ``import zhiku``; numpy and torch are imported inside functions.
"""
