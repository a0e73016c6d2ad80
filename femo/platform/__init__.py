"""The ground every stage stands on: settings, the command line, the Spark session and the
``spark-submit`` arguments, the job shape, the catalog and table specs, SQL files, Delta commits
written from Python, file listing by URI scheme, who holds a femo home, and process-wide fixes.

Nothing here imports a stage (``femo.ingest``, ``femo.sources``, ``femo.faces``,
``femo.analytics``, ``femo.ml``, ``femo.serve``).
"""
