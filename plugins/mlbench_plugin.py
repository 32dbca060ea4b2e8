"""The Airflow plugin: serves mlbench's API inside Airflow's API server at /mlbench."""

from airflow.plugins_manager import AirflowPlugin

from mlbench_api.app import create_app


class MlbenchPlugin(AirflowPlugin):
    name = "mlbench"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/mlbench", "name": "mlbench API"}]
