"""The one builder of test hub configs: the lab settings a test hub needs, written in one place.

Every test hub runs on this machine only (HubProcess adds the loopback base). Two
shapes cover the suite: a spawner wired by hand (:func:`lab_config`), and a lab
wired by ``labhub.configure()`` (:func:`configured_config`), each with lines a test
adds before or after.
"""

from __future__ import annotations

import textwrap

PASSWORD = "lab-dev-password"

#: Who logs people in: JupyterHub's own dummy login, or LabAuthenticator in dummy mode.
AUTHENTICATORS = {
    "dummy": f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
""",
    "lab": f"""
c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
c.LabAuthenticator.mode = "dummy"
c.LabAuthenticator.dummy_password = {PASSWORD!r}
""",
}


def lab_config(
    image: str,
    lab_root,
    prefix: str | None,
    *,
    spawner: str = "LabDockerSpawner",
    auth: str = "dummy",
    pool: int = 0,
    extra: str = "",
) -> str:
    """A hub whose lab spawner is set by hand, on host networking.

    ``prefix=None`` keeps labhub's default names (with the hub's identity); ``pool``
    is ``warm_pool_size``, and a hub with a pool keeps its labs across restarts.
    """
    lines = [
        f'c.JupyterHub.spawner_class = "labhub.{spawner}"',
        AUTHENTICATORS[auth],
        f"c.{spawner}.image = {image!r}",
        f'c.{spawner}.network_name = "host"',
        f"c.{spawner}.lab_root = {str(lab_root)!r}",
        f'c.{spawner}.pull_policy = "never"',
    ]
    if prefix is not None:
        lines.append(f"c.{spawner}.prefix = {prefix!r}")
    if pool:
        lines += [f"c.{spawner}.warm_pool_size = {pool}", "c.JupyterHub.cleanup_servers = False"]
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)


def configured_config(
    image: str, lab_root, prefix: str | None, *, before: str = "", after: str = "", **options
) -> str:
    """A hub wired by ``labhub.configure()`` on its defaults, image and lab_root aside.

    ``before`` lines come above the call (configure() keeps them), ``after`` lines
    below it (they win), as an admin's ``jupyterhub_config.py`` would have them.
    """
    options = {"auth_mode": "dummy", "dummy_password": PASSWORD, **options}
    arguments = "".join(f"    {key}={value!r},\n" for key, value in options.items())
    lines = ["import labhub", 'c.LabDockerSpawner.pull_policy = "never"']
    if prefix is not None:
        lines.append(f"c.LabDockerSpawner.prefix = {prefix!r}")
    lines.append(textwrap.dedent(before))
    lines.append(
        f"labhub.configure(\n    c,\n    lab_root={str(lab_root)!r},\n    image={image!r},\n"
        f"{arguments})"
    )
    lines.append(textwrap.dedent(after))
    return "\n".join(lines) + "\n"
