"""Stage 1, files to rows: what a file's place says (layouts, labels, splits), the per-image
inspection (sniff, guard, decode, measure, hash), the FER-2013 CSV, the ingest run behind
``jobs/ingest_images.py``, and the generated sample collection.

Imports the ground only.
"""
