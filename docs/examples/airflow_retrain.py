"""Nightly retraining of Sentinel's model (docs/models.md).

`fraudctl pipeline retrain` exits 0 when it promoted a model or had nothing
new to train on, 3 when it trained a model that was not better than live by
the margin, 4 when there are not enough fraud labels yet, 1 on an error.
Airflow's BashOperator marks the task skipped on the codes listed in
`skip_on_exit_code` and failed (and retried) on any other non-zero code.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="sentinel_retrain",
    schedule="15 3 * * *",
    start_date=datetime(2026, 12, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=15)},
    tags=["sentinel", "fraud"],
) as dag:
    retrain = BashOperator(
        task_id="retrain",
        bash_command=(
            "fraudctl pipeline retrain --target-fpr 0.01 --margin 0.02 --calibrate"
        ),
        # DATABASE_URL comes from an Airflow connection or the worker's env.
        env={"DATABASE_URL": "{{ conn.sentinel_db.get_uri() }}"},
        append_env=True,
        skip_on_exit_code=[3, 4],
        execution_timeout=timedelta(minutes=30),
    )
