"""What a lab spawner needs from the engine that runs labs: the one interface Docker and Swarm provide.

A spawner builds one :class:`~labhub.lab.model.Lab` per spawn and hands it to its
engine; everything engine-specific happens behind this interface. How HOME, tmpfs
and mounts are expressed is decided by the engine's pure translation
(:func:`~labhub.lab.model.container_spec` for Docker,
:func:`~labhub.lab.model.service_spec` for Swarm), which both take the same lab
and give it the same semantics; where an engine cannot express a part (a tmpfs
owner on Swarm) its translation reaches the same result another way, and a
setting it cannot honour at all is refused at hub start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from labhub.lab.folder_task import FolderJob
from labhub.lab.model import Lab, Overrides

#: ``spawner.docker``: runs one docker-py API call by name in the hub's Docker threads.
DockerCall = Callable[..., Awaitable[Any]]

#: Lines of a lab's output kept in the hub log when it stops while starting.
EXIT_OUTPUT_LINES = 25


@dataclass(frozen=True)
class ExitReport:
    """How a lab that stopped while starting ended: exit code, out of memory, its last output."""

    exit_code: int | None
    oom: bool
    output: str


class Engine(Protocol):
    """Where labs run. One object per spawner; it keeps no state of its own between calls."""

    #: The engine's name in messages to admins ("Docker", "Swarm").
    name: str

    def translate(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """The engine's create arguments for ``lab`` (pure: raises LabSpecError for a bad override)."""

    async def create(self, lab: Lab, overrides: Overrides) -> dict[str, Any]:
        """Create (not start) the lab's object; returns the engine's answer, with its ``Id``/``ID``."""

    async def remove(self, object_id: str) -> None:
        """Remove the lab's object, running or not; a missing one is not an error."""

    async def exit_report(self, object_id: str) -> ExitReport:
        """How the lab's server ended, for the one sentence a user reads and the admin's log."""

    async def run_folder_helper(
        self, job: FolderJob, *, image: str, name: str, owner: str, placement: list[str]
    ) -> None:
        """Create ``job``'s folder with a one-shot root helper of ``image``.

        ``name`` names the helper where the engine needs a name (a Swarm service),
        ``owner`` is the user label it carries, and ``placement`` the placement
        constraints of the user's lab (Swarm places the helper on the lab's node).

        Raises :class:`~labhub.lab.folder_task.FolderHelperError` with one sentence.
        """

    async def container_of(self, object_id: str) -> str | None:
        """The id of the container running the lab on the engine the hub talks to, if any."""

    async def host_address(self, object_id: str, loopback: str) -> str:
        """The address the hub connects to for a lab on host networking."""
