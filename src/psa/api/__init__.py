"""The HTTP API (FastAPI): psa.api.app.create_app."""
