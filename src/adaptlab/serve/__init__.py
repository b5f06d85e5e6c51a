"""``adaptlab serve``: task adapters on one frozen base and the fraud scorer over HTTP (FastAPI + uvicorn)."""
