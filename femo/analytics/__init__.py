"""Stage 4, reading the catalog: one-statement queries (``jobs/query.py``), the EDA report
(``jobs/eda_report.py``), the ERD generator (``make erd``) and Spark's Thrift server for JDBC/ODBC
clients (``make sql-server``).

Imports the ground only.
"""
