"""What the tests and the benchmarks in ``bench/`` share: a private Airflow environment
(``environment``), an app served on loopback (``server``) and supervised services
(``processes``). Development only: not part of the installed package."""
