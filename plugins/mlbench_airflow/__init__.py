"""Airflow-facing pieces shared by the DAGs: the API connection and the nightly's operator."""
