"""The emulator's control routes on moto's own ``/moto-api/`` plane, so a moto server in another process can be
driven like the in-process ``mock_aws`` (``endpoint=`` on every helper)."""

from __future__ import annotations

import json
from typing import Any

from flopsmeter.local.moto_ext.batch import SERVICE_JOB_STATE_PATH, apply_service_job_state
from flopsmeter.local.moto_ext.bedrock import BEDROCK_STATE_PATH, apply_bedrock_state
from flopsmeter.local.moto_ext.cloudtrail import clear_route, set_lag_route
from flopsmeter.local.moto_ext.common import CLEAR_PATH, LAG_PATH, STATE_PATH, EmulatorError
from flopsmeter.local.moto_ext.hyperpod import CLUSTER_STATE_PATH, apply_cluster_nodes
from flopsmeter.local.moto_ext.sagemaker import apply_state
from flopsmeter.local.moto_ext.training_sessions import SESSION_STATE_PATH, apply_session_state


def _route(apply: Any) -> Any:
    def handler(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        del full_url, headers
        raw = request.body if hasattr(request, "body") and not hasattr(request, "environ") else request.get_data()
        try:
            body = json.loads(raw or b"{}")
            answer = apply(body)
        except (EmulatorError, KeyError, ValueError, TypeError) as err:
            return 400, {"Content-Type": "application/json"}, json.dumps({"error": str(err).strip("'\"")})
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    handler.__name__ = f"flopsmeter_{apply.__name__.strip('_')}"
    return handler


def add_control_routes() -> None:
    from moto.moto_api._internal import urls

    urls.url_paths.setdefault("{0}" + STATE_PATH, _route(apply_state))
    urls.url_paths.setdefault("{0}" + LAG_PATH, _route(set_lag_route))
    urls.url_paths.setdefault("{0}" + CLEAR_PATH, _route(clear_route))
    urls.url_paths.setdefault("{0}" + BEDROCK_STATE_PATH, _route(apply_bedrock_state))
    urls.url_paths.setdefault("{0}" + SESSION_STATE_PATH, _route(apply_session_state))
    urls.url_paths.setdefault("{0}" + SERVICE_JOB_STATE_PATH, _route(apply_service_job_state))
    urls.url_paths.setdefault("{0}" + CLUSTER_STATE_PATH, _route(apply_cluster_nodes))
