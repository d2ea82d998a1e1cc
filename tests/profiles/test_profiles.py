"""Spawn profiles: the pure rules, the spawner's choice before anything starts, and a real hub with slapd.

Through a real hub, LabAuthenticator and the test directory: members of
``gpuusers`` see and start a profile that others cannot, a forged profile is
refused with one sentence and starts nothing, and the chosen profile's memory limit
and environment reach the container. Broken profile lists stop the hub at start.
"""

from __future__ import annotations

import textwrap
import time
from types import SimpleNamespace

import pytest
from tornado import web
from traitlets.config import Config

from labhub.lab.model import container_spec, service_spec
from labhub.profiles import rules as profiles
from labhub.spawner.docker import LabDockerSpawner
from labhub.spawner.swarm import LabSwarmSpawner

from ..conftest import lab_spawner_config
from ..hub.test_startup import BASE_ENV, LAB_AUTH, hub_refusal, refusal_sentence
from ..support.browser import Browser
from ..support.slapd import ldap_login_lines

PROFILES = [
    {
        "display_name": "Small",
        "slug": "small",
        "description": "256 MB, for everyone",
        "default": True,
        "spawner_override": {"mem_limit": "256M"},
    },
    {
        "display_name": "Large (GPU team)",
        "slug": "large",
        "description": "768 MB, gpuusers only",
        "allowed_groups": ["gpuusers"],
        "spawner_override": {
            "mem_limit": "768M",
            "cpu_limit": 1.5,
            "environment": {"LAB_PROFILE": "large"},
        },
    },
]


# --- the pure rules ----------------------------------------------------------------


def test_parse_keeps_the_kubespawner_shape():
    parsed = profiles.parse_profile_list(PROFILES + [{"display_name": "Data Science Lab"}])
    assert [p.slug for p in parsed] == ["small", "large", "data-science-lab"]
    assert parsed[1].allowed_groups == ("gpuusers",)
    assert parsed[0].allowed_groups is None and parsed[0].default


@pytest.mark.parametrize(
    "raw,words",
    [
        (
            [{"display_name": "A", "slug": "a"}, {"display_name": "B", "slug": "a"}],
            ["'a'", "unique"],
        ),
        ([{"display_name": "A", "spawner_override": {"imagee": "x"}}], ["'a'", "imagee", "image"]),
        (
            [{"display_name": "A", "spawner_override": {"uid_strategy": "x"}}],
            ["'a'", "uid_strategy"],
        ),
        ([{"display_name": "A", "kubespawner_override": {}}], ["'A'", "spawner_override"]),
        ([{"display_name": "A", "gpus": -1}], ["'a'", "gpus"]),
        ([{"display_name": "A", "gpus": "all"}], ["'a'", "shared"]),
        ([{"display_name": "A", "allowed_groups": "team"}], ["'a'", "allowed_groups"]),
        ([{"slug": "x"}], ["'x'", "display_name"]),
        ([{"display_name": "A", "slug": "Big Lab"}], ["'Big Lab'", "slug"]),
        (
            [{"display_name": "A", "default": True}, {"display_name": "B", "default": True}],
            ["'a'", "'b'"],
        ),
    ],
)
def test_bad_profile_lists_name_the_profile(raw, words):
    with pytest.raises(profiles.ProfileError) as err:
        profiles.parse_profile_list(raw)
    message = str(err.value)
    assert message.count(". ") == 0 and message.endswith("."), message
    for word in words:
        assert word in message, message


def test_choose_refuses_unknown_and_forbidden_profiles():
    parsed = profiles.parse_profile_list(PROFILES)
    assert profiles.choose_profile(parsed, None, []).slug == "small"
    assert profiles.choose_profile(parsed, "large", ["gpuusers"]).slug == "large"
    assert profiles.choose_profile(parsed, "large", [], admin=True).slug == "large"
    with pytest.raises(profiles.ProfileRefused) as forbidden:
        profiles.choose_profile(parsed, "large", ["datasci"])
    assert forbidden.value.status == 403 and "'large'" in str(forbidden.value)
    with pytest.raises(profiles.ProfileRefused) as unknown:
        profiles.choose_profile(parsed, "huge%s", ["gpuusers"])
    assert unknown.value.status == 400 and "small, large" in str(unknown.value)
    only_team = profiles.parse_profile_list([PROFILES[1]])
    with pytest.raises(profiles.ProfileRefused) as nothing:
        profiles.choose_profile(only_team, None, [])
    assert nothing.value.status == 403


def test_options_form_checks_the_default_and_escapes():
    parsed = profiles.parse_profile_list(
        PROFILES + [{"display_name": "<script>x</script>", "slug": "x", "gpus": 2}]
    )
    form = profiles.options_form(list(parsed))
    assert 'value="small" checked' in form and "(default)" in form
    assert "<script>" not in form and "2 GPUs" in form
    assert 'value="large" checked' in profiles.options_form(list(parsed), "large")
    assert profiles.options_from_form({"profile": ["large"]}) == {"profile": "large"}


def test_dict_overrides_merge_over_the_configured_value():
    values = profiles.overridden_values(
        {"environment": {"A": "1", "B": "2"}, "mem_limit": 1},
        {"environment": {"B": "3"}, "mem_limit": 2},
    )
    assert values == {"environment": {"A": "1", "B": "3"}, "mem_limit": 2}


# --- the spawner, without a daemon ----------------------------------------------------


def spawner(cls=LabDockerSpawner, groups=(), admin=False, **settings):
    c = Config()
    for key, value in {"profile_list": PROFILES, "gpu_devices": ["0"], **settings}.items():
        setattr(c[cls.__name__], key, value)
    user = SimpleNamespace(
        name="alice", admin=admin, groups=[SimpleNamespace(name=g) for g in groups]
    )
    return cls(config=c, user=user)


@pytest.mark.parametrize("cls", [LabDockerSpawner, LabSwarmSpawner])
def test_the_chosen_profile_reaches_both_translations(cls, lab_root):
    import asyncio

    s = spawner(cls, groups=["gpuusers"], lab_root=str(lab_root), prepare_folders=False)
    s.user_options = {"profile": "large"}
    s.use_lab_profile(s.select_lab_profile())
    s.get_command = lambda: asyncio.sleep(0, ["jupyterhub-singleuser"])
    s.get_env = lambda: {}  # the hub's own variables; the profile's come from the settings
    lab = asyncio.run(s.describe_lab())
    assert lab.mem_limit == 768 * 1024**2 and lab.cpu_limit == 1.5
    assert lab.environment["LAB_PROFILE"] == "large"
    if cls is LabDockerSpawner:
        assert container_spec(lab)["host_config"]["mem_limit"] == 768 * 1024**2
    else:
        resources = service_spec(lab)["task_template"]["Resources"]
        assert resources["Limits"]["MemoryBytes"] == 768 * 1024**2
    # the profile was merged as data: the spawner's own settings never changed
    assert not s.mem_limit and not s.cpu_limit and "LAB_PROFILE" not in s.environment
    # the next spawn with the default profile gets the configured values back
    s.user_options = {}
    settings = s.use_lab_profile(s.select_lab_profile())
    assert settings.mem_limit == 256 * 1024**2 and not settings.cpu_limit
    assert "LAB_PROFILE" not in settings.environment
    assert "LAB_PROFILE" not in asyncio.run(s.describe_lab()).environment


def test_forbidden_profile_is_a_403_before_anything():
    s = spawner(groups=["datasci"])
    s.user_options = {"profile": "large"}
    with pytest.raises(web.HTTPError) as err:
        s.select_lab_profile()
    assert err.value.status_code == 403
    assert "may not start profile 'large'" in err.value.get_message()


def test_one_usable_profile_means_no_form():
    assert spawner(groups=[]).profile_options_form() == ""
    form = spawner(groups=["gpuusers"]).profile_options_form()
    assert 'value="large"' in form and 'value="small" checked' in form
    assert 'value="large"' in spawner(admin=True).profile_options_form()


def test_config_check_names_the_broken_profile():
    bad_memory = [{"display_name": "Odd", "spawner_override": {"mem_limit": "lots"}}]
    with pytest.raises(ValueError, match="'odd'"):
        spawner(profile_list=bad_memory).check_lab_config()
    swarm_only = [{"display_name": "Odd", "spawner_override": {"placement_constraints": []}}]
    with pytest.raises(ValueError, match="'odd'.*LabDockerSpawner"):
        spawner(profile_list=swarm_only).check_lab_config()
    host_key = [{"display_name": "Odd", "spawner_override": {"extra_host_config": {"mem": 1}}}]
    with pytest.raises(ValueError, match="'odd'.*extra_host_config"):
        spawner(profile_list=host_key).check_lab_config()
    no_gpu = [{"display_name": "Gpu", "gpus": 1}]
    with pytest.raises(ValueError, match="'gpu'.*has 0"):
        spawner(profile_list=no_gpu, gpu_devices=[]).check_lab_config()
    spawner().check_lab_config()  # the good list passes


# --- a hub that refuses to start -----------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize(
    "profile_list,words",
    [
        (
            [{"display_name": "A", "slug": "a"}, {"display_name": "B", "slug": "a"}],
            ("slug", "'a'"),
        ),
        ([{"display_name": "A", "spawner_override": {"img": "x"}}], ("'a'", "img")),
        ([{"display_name": "Gpu", "gpus": 2}], ("'gpu'", "gpu_devices")),
    ],
)
def test_broken_profile_list_stops_the_hub(tmp_path, lab_image, profile_list, words):
    config = (
        lab_spawner_config(lab_image, tmp_path / "lab", "labcfg")
        + LAB_AUTH
        + f"\nc.LabDockerSpawner.profile_list = {profile_list!r}\nc.LabDockerSpawner.gpu_devices = []\n"
    )
    code, log = hub_refusal(tmp_path, lab_image, config, BASE_ENV)
    assert code != 0 and "Traceback" not in log
    sentence = refusal_sentence(log)
    for word in words:
        assert word in sentence, sentence


# --- through a real hub and slapd ----------------------------------------------------


def ldap_profiles_config(slapd, image, lab_root, prefix, extra: str = "") -> str:
    return lab_spawner_config(
        image,
        lab_root,
        prefix,
        ldap_login_lines(slapd)
        + textwrap.dedent(
            f"""
            c.Authenticator.allow_all = True
            c.LabDockerSpawner.profile_list = {PROFILES!r}
            """
        )
        + extra,
    )


def api(browser: Browser, method: str, path: str, **kwargs):
    return browser.session.request(
        method, f"{browser.base}/hub/api{path}", headers=browser._hub_xsrf(), timeout=60, **kwargs
    )


@pytest.mark.docker
@pytest.mark.ldap
def test_groups_decide_who_starts_which_profile(
    hub_factory, slapd, lab_image, lab_root, lab_prefix, docker_client
):
    hub = hub_factory(ldap_profiles_config(slapd, lab_image, lab_root, lab_prefix))
    alice, bob = Browser(hub.url), Browser(hub.url)
    assert alice.login("alice", "alice-pw").status_code == 302
    assert bob.login("bob", "bob-pw").status_code == 302
    users = {u["name"]: u for u in hub.api("GET", "/users").json()}
    assert set(users["alice"]["groups"]) == {"datasci", "gpuusers"}
    assert users["bob"]["groups"] == []

    # alice's form offers both, the default checked; bob (one profile) gets no form
    form = alice.session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert form.status_code == 200
    assert 'value="large"' in form.text and 'value="small" checked' in form.text

    # bob forges the team's profile: one sentence, a 403, and no container
    t0 = time.monotonic()
    forged = api(bob, "POST", "/users/bob/server", json={"profile": "large"})
    print(f"\nforged profile refused in {time.monotonic() - t0:.2f} s: {forged.json()['message']}")
    assert forged.status_code == 403
    assert forged.json()["message"] == "You may not start profile 'large'; yours: small."
    unknown = api(bob, "POST", "/users/bob/server", json={"profile": "nope"})
    assert unknown.status_code == 400 and "There is no profile 'nope'" in unknown.json()["message"]
    assert not docker_client.containers.list(all=True, filters={"name": f"{lab_prefix}-bob"})

    # bob's spawn page starts his one profile at once
    page = bob.session.get(f"{hub.url}/hub/spawn", allow_redirects=False, timeout=60)
    assert page.status_code == 302 and "spawn-pending" in page.headers["Location"]
    hub.wait_ready("bob")

    # alice starts the team's profile; its memory limit and environment reach the container
    t0 = time.monotonic()
    started = api(alice, "POST", "/users/alice/server", json={"profile": "large"})
    assert started.status_code in (201, 202), started.text
    hub.wait_ready("alice")
    print(f"alice's large lab ready in {time.monotonic() - t0:.1f} s")
    inspect = {
        c.name.split("-", 1)[1]: c.attrs
        for c in docker_client.containers.list(filters={"name": lab_prefix})
    }
    assert inspect["alice"]["HostConfig"]["Memory"] == 768 * 1024**2
    assert inspect["alice"]["HostConfig"]["CpuQuota"] == 150_000
    assert "LAB_PROFILE=large" in inspect["alice"]["Config"]["Env"]
    assert inspect["bob"]["HostConfig"]["Memory"] == 256 * 1024**2
    assert not any(e.startswith("LAB_PROFILE=") for e in inspect["bob"]["Config"]["Env"])
    assert hub.user_request("alice", "GET", "/api").status_code == 200


@pytest.mark.docker
@pytest.mark.ldap
def test_profile_group_missing_from_the_directory_stops_the_hub(
    tmp_path, slapd, lab_image, lab_root
):
    config = ldap_profiles_config(slapd, lab_image, lab_root, "labcfg").replace(
        "gpuusers", "gpu-users"
    )
    code, log = hub_refusal(tmp_path, lab_image, config, {})
    sentence = refusal_sentence(log)
    assert code != 0 and "Traceback" not in log
    assert "'large'" in sentence and "'gpu-users'" in sentence, sentence


# --- named servers -----------------------------------------------------------------


@pytest.mark.docker
def test_named_servers_each_get_their_own_container_and_profile(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    from labhub.lab.names import lab_object_name

    everyone = [{**p, "allowed_groups": None} for p in PROFILES]
    hub = hub_factory(
        lab_spawner_config(
            lab_image,
            lab_root,
            lab_prefix,
            f"""
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 1
c.LabDockerSpawner.profile_list = {[{k: v for k, v in p.items() if v is not None} for p in everyone]!r}
""",
        )
    )
    hub.spawn("ann")
    r = hub.api("POST", "/users/ann/servers/extra", json={"profile": "large"})
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 120
    while not (hub.api("GET", "/users/ann").json()["servers"].get("extra") or {}).get("ready"):
        assert time.monotonic() < deadline, hub.log_tail()
        time.sleep(0.3)
    default = docker_client.containers.get(lab_object_name(lab_prefix, "ann", ""))
    extra = docker_client.containers.get(lab_object_name(lab_prefix, "ann", "extra"))
    assert default.name != extra.name
    assert default.attrs["HostConfig"]["Memory"] == 256 * 1024**2
    assert extra.attrs["HostConfig"]["Memory"] == 768 * 1024**2
    third = hub.api("POST", "/users/ann/servers/third", json={})
    assert third.status_code == 400 and "maximum of 1 named" in third.json()["message"], third.text


# --- the same profiles on a one-node swarm -------------------------------------------


@pytest.mark.docker
@pytest.mark.swarm
def test_profile_reaches_the_swarm_service(
    swarm, hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    lab_root.mkdir()
    everyone = [{k: v for k, v in p.items() if k != "allowed_groups"} for p in PROFILES]
    config = lab_spawner_config(
        lab_image, lab_root, lab_prefix, f"c.LabDockerSpawner.profile_list = {everyone!r}\n"
    ).replace("LabDockerSpawner", "LabSwarmSpawner")
    hub = hub_factory(config)
    hub.spawn("carla", {"profile": "large"})
    try:
        [service] = [s for s in docker_client.services.list() if s.name.startswith(lab_prefix)]
        task = service.attrs["Spec"]["TaskTemplate"]
        assert task["Resources"]["Limits"]["MemoryBytes"] == 768 * 1024**2
        assert task["Resources"]["Limits"]["NanoCPUs"] == 1_500_000_000
        assert "LAB_PROFILE=large" in task["ContainerSpec"]["Env"]
    finally:
        hub.stop_server("carla")
        # Swarm removes the task's container a moment later; let it, before lab_prefix's cleanup
        deadline = time.monotonic() + 30
        while docker_client.api.containers(all=True, filters={"name": lab_prefix}):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
