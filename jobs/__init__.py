"""Entry points submitted with ``spark-submit.sh``; each only wires inputs and outputs."""
