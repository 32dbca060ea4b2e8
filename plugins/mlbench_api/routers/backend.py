"""``/api/backend``: which launch backend runs the workers and what it enforces here."""

from __future__ import annotations

from mlbench_api.auth import UserDep
from mlbench_api.routing import SlashRouter
from mlbench_core.launch.backend import Capabilities, get_backend
from mlbench_core.settings import get_settings

router = SlashRouter(prefix="/backend", tags=["backend"])


@router.get("/", response_model=Capabilities)
def get_capabilities(_caller: UserDep) -> Capabilities:
    """The backend's name and, per kind of limit, whether it is enforced (and by what),
    only requested, or unavailable (runs asking for it are refused); GPUs, custom images,
    how worker logs reach the API, and whether runs are admitted by free CPUs."""
    settings = get_settings()
    return get_backend(settings.backend).capabilities(settings)
