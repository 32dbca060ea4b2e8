"""mlbench's REST API and its store, served inside Airflow's API server by the plugin."""
