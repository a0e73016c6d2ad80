"""Stage 2, data from outside: HTTP with retries and redaction, image-search connectors and the
downloads into the landing zone (``jobs/fetch_api_images.py``), a local image-API mirror, the FACS
page (``jobs/scrape_facs.py``) and the everyday-emotions CSV (``jobs/ingest_everyday.py``).

Imports the ground and :mod:`femo.ingest` (per-image inspection, CSV lines, labels).
"""
