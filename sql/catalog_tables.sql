-- Names of the tables in the current database, from the metastore alone (no table is opened).
SHOW TABLES
