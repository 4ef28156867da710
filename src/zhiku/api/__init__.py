"""The web API and web page (``zhiku serve``): FastAPI routes over the ``KnowledgeBase`` facade.

Nothing here is imported by ``import zhiku`` or the CLI's parser: FastAPI loads only when the server
starts. ``create_app`` in ``app.py`` builds the application.
"""
