"""Spawn profiles and GPUs on a lab spawner: the settings, the form, and the steps around ``start()``.

``LabProfileMixin`` extends :class:`~labhub.spawner.lifecycle.LabSpawnerMixin` in
both engine classes. Before anything is created it picks the user's profile
(refusing a forged one with a 4xx), merges the profile's overrides into this
spawn's settings value (nothing is set on the spawner), and takes the lab's GPUs
from the hub's pool; :func:`labhub.lab.build.build_lab` then carries all of it into
the one lab description that Docker and Swarm translate. The rules themselves are
pure, in :mod:`labhub.profiles.rules` and :mod:`labhub.profiles.gpus`.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from docker.errors import APIError
from tornado import web
from traitlets import Enum, List, TraitError, Unicode, default, validate

from labhub.lab import build, engine_limits
from labhub.profiles import gpus
from labhub.profiles import rules as profiles
from labhub.spawner.lifecycle import LabSpawnerMixin, check_overrides
from labhub.spawner.settings import LabSpawnError, settings_from_traits
from labhub.usage import recorder
from labhub.usage.lab_usage import LabFacts, LabUsage


def _refuse(status: int, message: str) -> web.HTTPError:
    # "%s": a slug typed by a user may hold a % sign
    return web.HTTPError(status, "%s", message)


class LabProfileMixin(LabSpawnerMixin):
    """Profiles (``profile_list``) and GPUs (``gpu_devices``) for LabDockerSpawner and LabSwarmSpawner."""

    profile_list = List(
        config=True,
        help="""Labs a user may choose from, in KubeSpawner's ``profile_list`` shape: each a
        dict with ``display_name``, ``slug`` (default: from the display name),
        ``description``, ``default`` (True for the one pre-selected), ``allowed_groups``
        (JupyterHub group names, e.g. directory groups with
        ``LabAuthenticator.manage_groups``; absent means everyone), ``spawner_override``
        (settings of this spawner for the lab: ``image``, ``mem_limit``, ``cpu_limit``,
        ``environment``, ``lab_volumes``, ``extra_host_config``, ...; dicts are merged over
        the configured value) and ``gpus`` (a count of GPUs the lab holds alone, or
        ``"shared"``: the GPUs no lab holds alone when it starts, which then no lab may take
        alone while it runs; Docker only). The spawn form shows only the profiles
        the user may start, and none when that is one; admins may start all. The REST
        API takes ``{"profile": "<slug>"}``. Empty (default): one lab for everyone.""",
    )

    @validate("profile_list")
    def _valid_profile_list(self, proposal: Any) -> list:
        self._parsed_profiles = profiles.parse_profile_list(proposal.value)
        return proposal.value

    _parsed_profiles: tuple[profiles.Profile, ...] = ()

    gpu_devices = List(
        Unicode(),
        config=True,
        help="""GPU ids of this host that labs may hold (``nvidia-smi`` indexes or UUIDs), e.g.
        ``["0", "1"]``. A lab of a profile with ``gpus: N`` gets N of them for itself and
        gives them back when it stops or dies. Default: the indexes ``nvidia-smi`` lists,
        none where the NVIDIA tools are missing. LabSwarmSpawner ignores it: each node
        advertises its GPUs as generic resources and Swarm assigns them.""",
    )

    @default("gpu_devices")
    def _default_gpu_devices(self) -> list[str]:
        return gpus.discover_devices()

    gpu_request = Enum(
        ["device_requests", "environment"],
        default_value="device_requests",
        config=True,
        help="""How a lab's GPUs reach Docker. ``device_requests`` (default): a device request
        for exactly the lab's ids with the ``nvidia`` driver (``docker run --gpus
        '"device=0,1"'``), which needs the NVIDIA container toolkit. ``environment``: only
        ``NVIDIA_VISIBLE_DEVICES=<ids>``, for engines whose default runtime is ``nvidia``.""",
    )

    _gpu_ids: tuple[str, ...] = ()
    _gpu_shared = False

    # --- profiles ----------------------------------------------------------------------

    @property
    def lab_profiles(self) -> tuple[profiles.Profile, ...]:
        """``profile_list`` as checked values, parsed once when the setting was given."""
        return self._parsed_profiles

    def usable_lab_profiles(self) -> list[profiles.Profile]:
        return profiles.usable_profiles(
            self.lab_profiles, self.user_group_names(), bool(getattr(self.user, "admin", False))
        )

    @default("options_form")
    def _default_options_form(self) -> Any:
        if not self.lab_profiles:
            return super()._default_options_form()
        return lambda spawner: spawner.profile_options_form()

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        if not self.lab_profiles:
            return super()._default_options_from_form()
        return profiles.options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        if not self.lab_profiles:
            return None
        # JupyterHub's hook for user options: a refused profile is a 4xx before any other step
        return lambda spawner, user_options: spawner.select_lab_profile()

    def profile_options_form(self) -> str:
        """The spawn form: the user's profiles, the last one chosen checked; none for one profile."""
        usable = self.usable_lab_profiles()
        if len(usable) <= 1:
            return ""
        last = (getattr(self, "orm_spawner", None) and self.orm_spawner.user_options) or {}
        return profiles.options_form(usable, last.get("profile"))

    def select_lab_profile(self) -> profiles.Profile | None:
        """The profile of this spawn, from ``user_options``; a 4xx, one sentence, when refused."""
        options = self.user_options or {}
        try:
            return profiles.choose_profile(
                self.lab_profiles,
                options.get("profile"),
                self.user_group_names(),
                bool(getattr(self.user, "admin", False)),
            )
        except profiles.ProfileRefused as err:
            self.log.warning("Spawn of %s refused: %s", self.user.name, err)
            self._forget_refused_options(options)
            raise _refuse(err.status, str(err)) from None

    def _forget_refused_options(self, options: dict[str, Any]) -> None:
        # JupyterHub keeps the last options as the next spawn's default; a refused one must not be
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is not None and orm_spawner.user_options == options:
            orm_spawner.user_options = {}
            db = getattr(self.user, "db", None)
            if db is not None:
                db.commit()

    # --- GPUs ----------------------------------------------------------------------------

    def gpu_pool(self) -> gpus.GpuPool:
        return gpus.pool_for(self.gpu_devices)

    def hold_gpus(self, profile: profiles.Profile | None) -> tuple[str, ...]:
        """Take this lab's GPUs from the hub's pool, alone or shared (none for Swarm or GPU-less labs)."""
        self.release_gpus()
        if profile is None or not self.hub_assigns_gpus:
            return ()
        try:
            if profile.gpus == profiles.SHARED:
                self._gpu_ids = self.gpu_pool().share(self.object_name)
                self._gpu_shared = True
            else:
                self._gpu_ids = self.gpu_pool().allocate(self.object_name, profile.exclusive_gpus)
        except gpus.NoFreeGpu as err:
            self.log.warning("Spawn of %s refused: %s", self.user.name, err)
            raise _refuse(409, str(err)) from None
        if self._gpu_ids:
            how = "shares" if self._gpu_shared else "holds"
            self.log.info("Lab %s %s GPUs %s", self.object_name, how, ",".join(self._gpu_ids))
        return self._gpu_ids

    def release_gpus(self) -> None:
        released = self.gpu_pool().release(self.object_name) if self.hub_assigns_gpus else ()
        if released:
            self.log.info("Lab %s gave back GPUs %s", self.object_name, ",".join(released))
        self._gpu_ids = ()
        self._gpu_shared = False

    def lab_gpu_ids(self) -> tuple[str, ...]:
        """The device ids the lab's container sees: those it holds alone, or those it shares."""
        return self._gpu_ids

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        began = time.monotonic()
        profile = self.select_lab_profile()
        self.use_lab_profile(profile)  # this spawn's settings, read once with the profile merged in
        self.hold_gpus(profile)
        try:
            ip_port = await super().start()
            self.lab_usage.started(self.lab_facts(profile), time.monotonic() - began)
            return ip_port
        except APIError as err:
            self.release_gpus()
            message = gpus.runtime_missing_message(str(err.explanation or err))
            if message is None:
                raise
            await self._discard_failed_start()
            self.log.error("Spawn of %s failed: %s (%s)", self.user.name, message, err.explanation)
            raise LabSpawnError(message) from None
        except BaseException:
            self.release_gpus()
            raise

    async def stop(self, now: bool = False) -> None:
        if self._lab_usage is not None:
            # first: the record's last reading needs the container, and its reason the request
            await self._lab_usage.stopping(self.user.name, self.object_id)
        try:
            await super().stop(now=now)
        finally:
            self.release_gpus()

    async def poll(self) -> int | str | None:
        status = await super().poll()
        if status is not None and not self._spawn_pending:
            self.release_gpus()  # a lab that died gives its GPUs back at once
            if self._lab_usage is not None:
                self._lab_usage.died()
        return status

    # --- usage records ------------------------------------------------------------------

    #: made by the first start or restored state; a spawner that never ran a lab opens no file
    _lab_usage: LabUsage | None = None

    @property
    def lab_usage(self) -> LabUsage:
        """This spawner's side of the hub's usage records (:mod:`labhub.usage`)."""
        if self._lab_usage is None:
            made = None
            if self.record_usage:
                made = recorder.recorder_for(
                    self.usage_records_file, self.usage_settings, self.client, self.log
                )
            self._lab_usage = LabUsage(made)
        return self._lab_usage

    def usage_settings(self) -> recorder.UsageSettings:
        """The recorder's settings, read from the traits (once per hub: the recorder is shared)."""
        settings = settings_from_traits(self)
        return recorder.UsageSettings(
            records_file=self.usage_records_file,
            sample_interval=self.usage_sample_interval,
            folder_interval=self.folder_size_interval,
            folder_timeout=self.folder_size_timeout,
            soft_limit=self.personal_folder_soft_limit,
            personal_folder=functools.partial(build.personal_folder, settings),
        )

    def lab_facts(self, profile: profiles.Profile | None) -> LabFacts:
        """The started lab as plain values for its usage record."""
        gpu_count = len(self._gpu_ids)
        if not self.hub_assigns_gpus and profile is not None and profile.gpus:
            gpu_count = profile.exclusive_gpus  # Swarm reserves a count; it picks the devices
        return LabFacts(
            user=self.user.name,
            server_name=getattr(self, "name", "") or "",
            groups=tuple(self.user_group_names()),
            profile=profile.slug if profile else "",
            image=self.lab_image(),
            gpus=self._gpu_ids,
            gpu_count=gpu_count,
            engine=engine_limits.engine_of(type(self)) or "docker",
            object_id=self.object_id,
            warm=bool(getattr(self, "warm_slot", "")),
        )

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._lab_usage is not None and self._lab_usage.key:
            state["usage_record"] = self._lab_usage.key
        if self.object_id and self._gpu_ids:
            state["gpu_ids"] = list(self._gpu_ids)
            if self._gpu_shared:
                state["gpu_shared"] = True
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get("usage_record"):
            self.lab_usage.restore(state["usage_record"])
        if state.get("gpu_ids") and self.hub_assigns_gpus:
            shared = bool(state.get("gpu_shared"))
            kept = self.gpu_pool().restore(self.object_name, state["gpu_ids"], shared=shared)
            self._gpu_ids = kept
            self._gpu_shared = shared and bool(kept)
            lost = set(state["gpu_ids"]) - set(kept)
            if lost:
                self.log.warning(
                    "Lab %s held GPUs %s that are no longer free or configured",
                    self.object_name,
                    ",".join(sorted(lost)),
                )

    def clear_state(self) -> None:
        super().clear_state()
        self._gpu_ids = ()
        self._gpu_shared = False

    # --- the start-up check -------------------------------------------------------------

    def check_lab_config(self) -> None:
        """Also check every profile: its overrides on a stand-in lab, its GPUs against the host."""
        super().check_lab_config()
        devices = list(self.gpu_devices) if self.hub_assigns_gpus else None
        for profile in self.lab_profiles:
            for key in profile.spawner_override:
                if not self.has_trait(key):
                    raise profiles.ProfileError(
                        f"Profile {profile.slug!r} overrides {key!r}, which "
                        f"{type(self).__name__} does not have."
                    )
            if devices is None and profile.gpus == profiles.SHARED:
                # Swarm hands out a node's GPUs itself: the hub cannot keep a shared lab off them
                raise profiles.ProfileError(
                    f'Profile {profile.slug!r} has gpus: "shared", which {type(self).__name__} '
                    "cannot keep away from GPUs Swarm gave to other labs; give it a count instead."
                )
            if devices is not None and profile.gpus:
                wanted = len(devices) if profile.gpus == profiles.SHARED else profile.gpus
                if not devices or wanted > len(devices):
                    raise profiles.ProfileError(
                        f"Profile {profile.slug!r} asks for {profile.gpus} GPU(s) but this host "
                        f"has {len(devices)}; set gpu_devices or change the profile."
                    )
            try:
                check_overrides(self.settings_for(profile), self.translate_lab)
            except (LabSpawnError, TraitError, ValueError, TypeError) as err:
                raise profiles.ProfileError(f"Profile {profile.slug!r}: {err}") from None
