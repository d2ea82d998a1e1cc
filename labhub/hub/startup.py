"""Checks that run when the hub starts: a bad setting stops it with one sentence, no traceback."""

from __future__ import annotations

import logging
from typing import Any

from traitlets import TraitError

from labhub.hub import identity


def refuse_to_start(log: logging.Logger | logging.LoggerAdapter, message: str) -> None:
    """Log ``message`` as the one reason the hub stops, and stop it.

    JupyterHub logs any exception raised during start-up with a full traceback;
    SystemExit passes through that handler, so the admin sees only the sentence.
    """
    log.critical("labhub: %s", message)
    raise SystemExit(1)


def run_hub_startup(app: Any) -> Any:
    """The lab's duties at hub start, done once per hub whichever plugin asks first.

    Checks the lab settings, creates the labs' network the hub binds to, and fills the
    warm pool. Returns the checked lab spawner (None for other spawners), so the
    authenticator can check what it depends on, such as the groups named by
    ``profile_list``.
    """
    done = getattr(app, "_labhub_startup", _NOT_RUN)
    if done is not _NOT_RUN:
        return done
    # before anything is named: the pool and the check name objects with the hub's identity
    identity.remember(getattr(app, "cookie_secret", None))
    spawner = _run_hub_startup(app)
    app._labhub_startup = spawner
    return spawner


_NOT_RUN = object()


def _run_hub_startup(app: Any) -> Any:
    """Read the configured lab spawner's settings now, with no user, so a wrong one stops the hub.

    Otherwise a wrong ``lab_uid`` or ``cifs_shares`` would surface only at the first spawn.
    The spawner is built from the config alone (no user, no name): its traits are
    validated as they are read, then the settings value and every profile are checked.
    """
    from labhub.spawner.settings import LabTraits

    spawner_class = getattr(app, "spawner_class", None)
    if not isinstance(spawner_class, type) or not issubclass(spawner_class, LabTraits):
        return None
    try:
        spawner = spawner_class(config=app.config)
        spawner.check_lab_config()
    except (ValueError, TypeError, TraitError) as err:
        refuse_to_start(app.log, f"{spawner_class.__name__}: {err}")
    from labhub.engines.network import LabNetworkError

    try:
        # the hub binds to the labs' network gateway: the network must exist before it listens
        spawner.prepare_lab_network_at_start()
    except LabNetworkError as err:
        refuse_to_start(app.log, str(err))
    except Exception as err:  # docker-py raises several kinds when no engine answers
        refuse_to_start(
            app.log, f"The labs' Docker network cannot be checked ({err}); is Docker running?"
        )
    start_warm_pool = getattr(spawner, "start_warm_pool", None)
    if start_warm_pool is not None:
        from labhub.pool.mounts import PoolMountError

        try:
            # filled before the first login, not at it
            start_warm_pool()
        except PoolMountError as err:
            refuse_to_start(app.log, str(err))
    return spawner
