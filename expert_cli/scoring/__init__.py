"""Scoring answers: test-case files, metrics, and the query engines that execute SQL and Cypher."""
