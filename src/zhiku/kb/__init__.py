"""The parts behind the ``KnowledgeBase`` facade (``zhiku/service.py``), one concept a module.

``methods`` resolves method names and reports their status, ``indexes`` keeps the derived indexes in
step with the catalog (build, retrain, load), ``search`` is the read path (search, rerank, answer).
Each part holds the facade and reaches the others through it, never past it: a method added to (or
patched on) ``KnowledgeBase`` is the one every part sees. Nothing outside the facade imports them.
"""
