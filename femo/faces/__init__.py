"""Stage 3, faces: Haar-cascade detection and crops, pure (:mod:`femo.faces.cascade`), and its
Spark side over ``femo.images`` (:mod:`femo.faces.detection`, ``jobs/detect_faces.py``).

Imports the ground and :mod:`femo.ingest.images` (the first frame of formats only Pillow reads).
"""
