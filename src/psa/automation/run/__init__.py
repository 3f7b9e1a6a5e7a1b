"""The automation runtime: runs of published definitions on Temporal, laid out as psa.provisioning is
(docs/architecture.md, "Temporal runtimes"):

- ``workflow.py``: ``AutomationRunWorkflow``, which walks the definition (pure, no database or network);
- ``activities.py``: ``AutomationActivities``, the activities it calls (``run_action``, ``project_run``);
- ``starter.py``: ``launch_run`` and ``run_handle``, what starts and addresses runs (CLI, API, event triggers);
- ``types.py``: the payloads that cross the workflow boundary, and the activity names;
- ``records.py``: the run tables, written by the starter and the activities and read back by ``get_run``.
"""
