"""The parts behind the ``KnowledgeBase`` facade (``zhiku/service.py``), one concept a module.

``methods`` resolves method names to instances and says whether each one's index is built and
fresh; ``indexes`` keeps the indexes in step with the catalog (build, retrain, load or rebuild);
``search`` is the read path (search, rerank, answer). The last two are handed the first; each
part also holds the facade for the KB's settings, catalog and layout, and calls back only its
public methods. Nothing but the facade uses these modules.
"""
