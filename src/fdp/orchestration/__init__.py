"""Airflow-facing helpers: the session timetable, the error policy, notifications, MWAA bundle.

The DAG file stays thin by delegating here; modules that do not need Airflow
(``schedule``, ``notify``, ``glue``, ``bundle``) import without it.
"""
