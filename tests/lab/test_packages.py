"""Per-user package folders: installs as the lab uid, kept across containers, never seen by others."""

from __future__ import annotations

import os
import stat
import textwrap

import pytest
from traitlets.config import Config

from labhub import LabDockerSpawner
from labhub.lab.build import lab_environment, package_environment, package_mounts
from labhub.lab.mounts import personal_folder
from labhub.lab.packages import (
    PACKAGES_MOUNT_PATH,
    packages_environment,
    packages_folder,
    packages_mount,
    packages_target,
    user_site,
    user_site_folders,
)
from labhub.spawner.settings import settings_from_traits

from ..support.labs import configured_hub, lab_container, lab_exec

#: A small pure-Python package that the lab image does not carry.
SMALL_PACKAGE, SMALL_MODULE = "cowsay", "cowsay"

ANALYSIS = textwrap.dedent(
    """
    import matplotlib
    matplotlib.use("Agg")
    import seaborn as sns, statsmodels.api as sm, sweetviz as sv
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = load_wine(as_frame=True).frame
    sv.analyze(df, pairwise_analysis="off").show_html(
        "/tmp/wine.html", open_browser=False, layout="vertical"
    )
    sns.pairplot(df[["alcohol", "flavanoids", "target"]], hue="target").savefig("/tmp/wine.png")
    ols = sm.OLS(df["alcohol"], sm.add_constant(df[["flavanoids"]])).fit()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    score = cross_val_score(model, df.drop(columns="target"), df["target"], cv=5).mean()
    print("report", len(open("/tmp/wine.html").read()) > 10_000, "r2", round(ols.rsquared, 2))
    print("accuracy", round(score, 2))
    """
)


# --- daemon-free -------------------------------------------------------------------------


def test_folder_is_a_direct_child_named_like_the_notebook_folder():
    for name in ("ann", "Ann.Lee"):
        notebooks = personal_folder("/srv/lab/personal_notebooks", name)
        folder = packages_folder("/srv/lab/packages", name)
        assert os.path.basename(folder) == os.path.basename(notebooks)
    for hostile in ("../root", "a/../../b", ".."):
        folder = packages_folder("/srv/lab/packages", hostile)
        assert os.path.dirname(folder) == "/srv/lab/packages"


def test_mount_and_environment():
    assert packages_mount("/srv/lab/packages/ann") == {
        "Type": "bind",
        "Source": "/srv/lab/packages/ann",
        "Target": PACKAGES_MOUNT_PATH,
        "ReadOnly": False,
    }
    env = packages_environment()
    assert env["PYTHONUSERBASE"] == PACKAGES_MOUNT_PATH and env["PIP_USER"] == "1"
    assert user_site(PACKAGES_MOUNT_PATH, "3.11").endswith("/lib/python3.11/site-packages")


def test_the_folder_has_the_user_sites_of_every_python_from_the_start():
    assert "lib/python3.11/site-packages" in user_site_folders()
    assert all(s.startswith("lib/python3.") for s in user_site_folders())
    assert packages_target("direct", "jovyan") == PACKAGES_MOUNT_PATH
    assert packages_target("docker-stacks", "ann") == "/home/ann/.local"


def test_settings_default_under_lab_root_and_can_be_turned_off():
    c = Config()
    c.LabDockerSpawner.lab_root = "/srv/lab"
    spawner = LabDockerSpawner(config=c)
    assert spawner.persistent_packages is True
    assert spawner.packages_dir == "/srv/lab/packages"
    c.LabDockerSpawner.persistent_packages = False
    c.LabDockerSpawner.packages_dir = "/data/pkgs/"
    spawner = LabDockerSpawner(config=c)
    assert spawner.packages_dir == "/data/pkgs"
    settings = settings_from_traits(spawner)
    assert package_mounts(settings, "ann") == [] and package_environment(settings) == {}
    with pytest.raises(Exception, match="packages_dir must be an absolute host path"):
        LabDockerSpawner(packages_dir="relative/pkgs")


@pytest.mark.security
def test_a_docker_stacks_lab_gives_the_users_site_to_the_lab_uid_only():
    """Root's Pythons before the switch ignore the package folder; the admin's unset list stays."""
    c = Config()
    c.LabDockerSpawner.lab_root = "/srv/lab"
    c.LabDockerSpawner.uid_strategy = "docker-stacks"
    c.LabDockerSpawner.environment = {"JUPYTER_ENV_VARS_TO_UNSET": "TEAM_SECRET"}
    settings = settings_from_traits(LabDockerSpawner(config=c))
    env = lab_environment(settings, "ann", {})
    # sudo in docker-stacks' start.sh drops PYTHONUSERBASE: the folder is the default user base
    assert env["PYTHONUSERBASE"] == "/home/jovyan/.local" and env["PIP_USER"] == "1"
    assert package_mounts(settings, "ann")[0]["Target"] == "/home/jovyan/.local"
    assert env["PYTHONNOUSERSITE"] == "1" and env["PYTHONSAFEPATH"] == "1"
    assert env["JUPYTER_ENV_VARS_TO_UNSET"] == "TEAM_SECRET,PYTHONNOUSERSITE,PYTHONSAFEPATH"
    c.LabDockerSpawner.uid_strategy = "direct"
    env = lab_environment(settings_from_traits(LabDockerSpawner(config=c)), "ann", {})
    assert "PYTHONNOUSERSITE" not in env and env["JUPYTER_ENV_VARS_TO_UNSET"] == "TEAM_SECRET"


# --- end to end ------------------------------------------------------------------------


@pytest.mark.docker
def test_stack_and_eda_tool_run_in_a_default_lab(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    hub = configured_hub(hub_factory, lab_image, lab_root, lab_prefix)
    hub.spawn("alice")
    lab = lab_container(docker_client, lab_prefix, "alice")
    code, out = lab_exec(lab, ["python", "-c", ANALYSIS])
    assert code == 0, out
    assert "report True" in out and "accuracy 0.9" in out, out


@pytest.mark.docker
def test_installs_survive_the_container_and_stay_private(
    hub_factory, lab_image, lab_root, lab_prefix, docker_client
):
    hub = configured_hub(hub_factory, lab_image, lab_root, lab_prefix)
    hub.spawn("alice")
    lab = lab_container(docker_client, lab_prefix, "alice")
    code, out = lab_exec(lab, ["pip", "install", "--quiet", SMALL_PACKAGE])
    assert code == 0, out
    assert "Permission denied" not in out

    # on the host: a 0700 folder of the lab uid, beside the notebooks, holding the package
    folder = lab_root / "packages" / "alice"
    st = os.stat(folder)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (2100, 2100, 0o700)
    code, version = lab_exec(
        lab, ["python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    )
    site = folder / "lib" / f"python{version.strip()}" / "site-packages"
    assert (site / SMALL_MODULE).is_dir(), sorted(os.listdir(folder))
    assert not (lab_root / "personal_notebooks" / "alice" / "lib").exists()

    # a failed install says why, and the lab keeps working
    code, out = lab_exec(
        lab, ["python", "-m", "pip", "install", "--no-index", "labhub-no-such-package"]
    )
    assert code != 0 and "No matching distribution" in out, out
    assert hub.user_request("alice", "GET", "/api/status").status_code == 200

    # a new container of alice's imports it again
    hub.stop_server("alice")
    hub.spawn("alice")
    lab = lab_container(docker_client, lab_prefix, "alice")
    code, out = lab_exec(
        lab, ["python", "-c", f"import {SMALL_MODULE}; print({SMALL_MODULE}.__file__)"]
    )
    assert code == 0 and out.startswith(PACKAGES_MOUNT_PATH), out

    # bob cannot import it, and alice's folder is not mounted into his lab
    hub.spawn("bob")
    bob = lab_container(docker_client, lab_prefix, "bob")
    code, out = lab_exec(bob, ["python", "-c", f"import {SMALL_MODULE}"])
    assert code != 0 and "ModuleNotFoundError" in out, out
    sources = {m["Source"] for m in bob.attrs["Mounts"]}
    assert str(folder) not in sources and str(lab_root / "packages" / "bob") in sources

    # alice resets her folder from inside her running lab: the package is gone, notebooks stay
    notebooks = sorted(os.listdir(lab_root / "personal_notebooks" / "alice"))
    reset = "import os, shutil; b = os.environ['LABHUB_PACKAGES']; [shutil.rmtree(os.path.join(b, e)) for e in os.listdir(b)]"
    code, out = lab_exec(lab, ["python", "-c", reset])
    assert code == 0, out
    code, out = lab_exec(lab, ["python", "-c", f"import {SMALL_MODULE}"])
    assert code != 0 and "ModuleNotFoundError" in out, out
    assert sorted(os.listdir(lab_root / "personal_notebooks" / "alice")) == notebooks
    assert hub.user_request("alice", "GET", "/api/status").status_code == 200
