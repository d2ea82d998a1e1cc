"""labhub.lab.mounts: the Mount dicts Docker and Swarm receive, built without a daemon."""

from __future__ import annotations

import pytest

from labhub.lab.mounts import (
    CifsCredentials,
    LabVolumes,
    MountConfigError,
    cifs_mount,
    cifs_volume_name,
    fill_template,
    lab_mounts,
    parse_cifs_share,
    parse_credentials_file,
    personal_folder,
    redacted,
)

LAYOUT = LabVolumes(
    personal_root="/srv/lab/personal_notebooks", shared_root="/srv/lab/shared_notebooks"
)


def test_fill_template_reaches_every_depth():
    value = {
        "{username}-vol": {"o": "addr=srv,user={username}", "nested": [{"x": "{raw_username}"}]},
        "keep": 3,
    }
    filled = fill_template(value, {"username": "bob", "raw_username": "Bob"})
    assert filled == {"bob-vol": {"o": "addr=srv,user=bob", "nested": [{"x": "Bob"}]}, "keep": 3}


def test_fill_template_refuses_unknown_fields():
    with pytest.raises(MountConfigError, match=r"Unknown field \{user\}"):
        fill_template("/data/{user}", {"username": "bob"})


def test_default_lab_mounts():
    mounts = lab_mounts(LAYOUT, "alice")
    assert mounts == [
        {
            "Type": "bind",
            "Source": "/srv/lab/personal_notebooks/alice",
            "Target": "/home/jovyan/work",
            "ReadOnly": False,
        },
        {
            "Type": "bind",
            "Source": "/srv/lab/shared_notebooks",
            "Target": "/home/jovyan/shared",
            "ReadOnly": False,
        },
    ]


def test_read_only_volumes_and_driver_options():
    layout = LabVolumes(
        personal_root="/p",
        shared_root="/s",
        read_only_volumes={"/opt/conda-big": "/opt/conda-shared", "team-{username}": "/data"},
        volumes={"scratch-{username}": "/home/jovyan/scratch"},
        volume_driver_options={
            "team-{username}": {
                "type": "nfs",
                "o": "addr=10.0.0.5,nfsvers=4",
                "device": ":/export/{username}",
            }
        },
    )
    mounts = {m["Target"]: m for m in lab_mounts(layout, "Bob")}
    folder = mounts["/home/jovyan/work"]["Source"].rsplit("/", 1)[1]
    assert folder.startswith("bob--")
    assert mounts["/opt/conda-shared"] == {
        "Type": "bind",
        "Source": "/opt/conda-big",
        "Target": "/opt/conda-shared",
        "ReadOnly": True,
    }
    team = mounts["/data"]
    assert team["Source"] == f"team-{folder}"
    assert team["ReadOnly"] is True
    assert team["VolumeOptions"]["DriverConfig"] == {
        "Name": "local",
        "Options": {"type": "nfs", "o": "addr=10.0.0.5,nfsvers=4", "device": f":/export/{folder}"},
    }
    scratch = mounts["/home/jovyan/scratch"]
    assert scratch["Type"] == "volume" and "DriverConfig" not in scratch["VolumeOptions"]


def test_mount_order_parents_first_and_duplicates_refused():
    layout = LabVolumes(
        personal_root="/p", shared_root="/s", volumes={"v": "/home/jovyan/work/sub/deeper"}
    )
    targets = [m["Target"] for m in lab_mounts(layout, "a")]
    assert targets.index("/home/jovyan/work") < targets.index("/home/jovyan/work/sub/deeper")
    clash = LabVolumes(personal_root="/p", shared_root="/s", volumes={"v": "/home/jovyan/work"})
    with pytest.raises(MountConfigError, match="/home/jovyan/work"):
        lab_mounts(clash, "a")


@pytest.mark.parametrize("target", ["relative/path", "/", "/a/../b", ""])
def test_bad_targets_refused(target):
    layout = LabVolumes(personal_root="/p", shared_root="/s", volumes={"v": target})
    with pytest.raises(MountConfigError):
        lab_mounts(layout, "a")


@pytest.mark.parametrize("username", ["..", "../../etc", "a/b", "x" * 500, "\x00"])
def test_personal_folder_is_always_a_child(username):
    folder = personal_folder("/srv/lab/personal_notebooks", username)
    parent, name = folder.rsplit("/", 1)
    assert parent == "/srv/lab/personal_notebooks" and name not in ("", ".", "..")


SHARE = {
    "name": "finance",
    "device": "//fileserver/finance/{raw_username}",
    "mount_path": "/home/jovyan/finance",
    "credentials": "file",
    "credentials_file": "/etc/labhub/finance.cred",
    "options": {"vers": "3.0"},
}


def test_cifs_mount_exact_options():
    share = parse_cifs_share(SHARE)
    creds = CifsCredentials("svc-lab", "p,ss=word", "CORP")
    mount = cifs_mount(
        share, prefix="labhub", username="Bob", uid=2100, gid=2100, credentials=creds
    )
    assert mount["Type"] == "volume"
    assert mount["Target"] == "/home/jovyan/finance"
    assert mount["Source"].startswith("labhub-cifs7-finance-bob--")
    options = mount["VolumeOptions"]["DriverConfig"]["Options"]
    assert options == {
        "type": "cifs",
        "device": "//fileserver/finance/Bob",
        "o": "username=svc-lab,password=p,,ss=word,domain=CORP,uid=2100,gid=2100,"
        "file_mode=0600,dir_mode=0700,vers=3.0",
    }
    assert mount["VolumeOptions"]["Labels"]["org.labhub.managed"] == "true"


def test_cifs_guest_and_read_only():
    share = parse_cifs_share(
        {**SHARE, "credentials": "guest", "credentials_file": "", "read_only": True}
    )
    mount = cifs_mount(share, prefix="labhub", username="amy", uid=3000, gid=3001, credentials=None)
    assert mount["ReadOnly"] is True
    o = mount["VolumeOptions"]["DriverConfig"]["Options"]["o"]
    assert o.startswith("guest,uid=3000,gid=3001,") and o.endswith(",ro")


def test_redacted_hides_passwords_only():
    share = parse_cifs_share(SHARE)
    mount = cifs_mount(
        share,
        prefix="labhub",
        username="bob",
        uid=1,
        gid=1,
        credentials=CifsCredentials("u", "se,,cr,et"),
    )
    shown = redacted([mount])[0]["VolumeOptions"]["DriverConfig"]["Options"]["o"]
    assert "se" not in shown.split("password=")[1].split(",uid")[0].replace("***", "")
    assert "password=***" in shown and "uid=1" in shown
    # the original is untouched
    assert "cr,,et" in mount["VolumeOptions"]["DriverConfig"]["Options"]["o"]
    assert "secret" not in repr(CifsCredentials("u", "secret"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Bad Name"}, "lowercase"),
        ({"device": "fileserver/finance"}, "//server/share"),
        ({"mount_path": "finance"}, "absolute"),
        ({"credentials": "ldap"}, "'file', 'auth_state' or 'guest'"),
        ({"credentials_file": ""}, "credentials_file"),
        ({"options": {"password": "x"}}, "may not set"),
        ({"file_mode": "rw"}, "octal"),
        ({"colour": "blue"}, "unknown keys"),
    ],
)
def test_bad_cifs_shares_refused_in_one_sentence(change, message):
    with pytest.raises(MountConfigError, match=message) as info:
        parse_cifs_share({**SHARE, **change})
    assert "\n" not in str(info.value)


def test_control_characters_in_credentials_refused():
    share = parse_cifs_share(SHARE)
    with pytest.raises(MountConfigError, match="control character"):
        cifs_mount(
            share,
            prefix="labhub",
            username="a",
            uid=1,
            gid=1,
            credentials=CifsCredentials("u", "pw\nx"),
        )


def test_credentials_file():
    creds = parse_credentials_file(
        "# lab service account\nusername=svc\npassword= a=b \ndomain=CORP\n"
    )
    assert (creds.username, creds.password, creds.domain) == ("svc", " a=b ", "CORP")
    with pytest.raises(MountConfigError):
        parse_credentials_file("username=svc\n")


# --- finding 7 of the security review: a comma in a CIFS password -------------------------

#: passwords the volume carries exactly (commas doubled, as the kernel's password= reads them)
CARRIED_PASSWORDS = ["p,ss", "a,,b", "x,uid=0", "ro", "tail,", ",lead", "x,RO", "x,robin"]
#: passwords whose comma is followed by a word Docker's local driver takes for itself
REFUSED_PASSWORDS = ["x,ro", "x,bind", ",ro", "a,,rbind", "x,nosuid", "x,addr=10.0.0.9"]


def kernel_password(data: str) -> str:
    """``password=`` as the kernel's CIFS option parser reads it: ``,,`` is one literal comma."""
    start = data.index("password=") + len("password=")
    out, i = [], start
    while i < len(data):
        if data[i] == ",":
            if data[i + 1 : i + 2] == ",":
                out.append(",")
                i += 2
                continue
            break
        out.append(data[i])
        i += 1
    return "".join(out)


@pytest.mark.security
@pytest.mark.parametrize("password", REFUSED_PASSWORDS)
def test_a_password_the_engine_would_split_is_refused_in_one_sentence(password):
    share = parse_cifs_share(SHARE)
    with pytest.raises(MountConfigError) as refused:
        cifs_mount(
            share,
            prefix="labhub",
            username="bob",
            uid=1,
            gid=1,
            credentials=CifsCredentials("u", password),
        )
    message = str(refused.value)
    examples = message.replace("',ro'", "").replace("',bind'", "")
    assert "'finance'" in message and message.count(". ") == 0 and password not in examples


@pytest.mark.parametrize(
    "creds", [CifsCredentials("svc,ro", "pw"), CifsCredentials("u", "pw", "CORP,bind")]
)
def test_a_comma_in_a_user_name_or_domain_is_refused(creds):
    with pytest.raises(MountConfigError, match="comma"):
        cifs_mount(
            parse_cifs_share(SHARE),
            prefix="labhub",
            username="bob",
            uid=1,
            gid=1,
            credentials=creds,
        )


@pytest.mark.security
@pytest.mark.parametrize("password", CARRIED_PASSWORDS + REFUSED_PASSWORDS)
def test_the_engine_mounts_with_exactly_the_password_given(
    password, docker_client, lab_image, lab_prefix
):
    """The real engine's mount call, read from its error (this kernel has no CIFS): no flag
    taken out of the password, and the kernel's rule gives the password back unchanged."""
    import docker

    share = parse_cifs_share(SHARE)
    try:
        mount = cifs_mount(
            share,
            prefix="labhub",
            username="bob",
            uid=2100,
            gid=2100,
            credentials=CifsCredentials("u", password),
        )
    except MountConfigError:
        assert password in REFUSED_PASSWORDS
        return
    options = mount["VolumeOptions"]["DriverConfig"]["Options"]
    name = f"{lab_prefix}-cifs"
    volume = docker_client.volumes.create(
        name, driver="local", driver_opts=options, labels={"org.labhub.managed": "true"}
    )
    assert volume.attrs["Options"] == options
    with pytest.raises(docker.errors.APIError) as failed:
        # the engine mounts the volume while it creates the container
        docker_client.containers.create(
            lab_image,
            ["true"],
            name=f"{lab_prefix}-mount",
            network_mode="none",
            mounts=[docker.types.Mount("/mnt", name, type="volume")],
        ).start()
    error = str(failed.value.explanation)
    assert "no such device" in error  # the kernel was asked, and has no CIFS
    assert ", flags: " not in error, error  # nothing in o became a mount flag
    data = error.split(", data: ", 1)[1].rsplit(": no such device", 1)[0]
    assert data == options["o"]
    assert kernel_password(data) == password


def test_cifs_volume_names_are_injective_and_carry_the_hub_prefix():
    """Share and user names may both hold '-': no split of the joined text may give one volume."""
    pairs = [("home", "archive-bob"), ("home-archive", "bob"), ("a", "b-c"), ("a-b", "c")]
    names = {
        cifs_volume_name(
            "labhub-ab12cd",
            parse_cifs_share({**SHARE, "name": share}),
            user,
        )
        for share, user in pairs
    }
    assert len(names) == len(pairs)
    assert all(n.startswith("labhub-ab12cd-cifs") for n in names)
    other_hub = cifs_volume_name("labhub-ffffff", parse_cifs_share(SHARE), "bob")
    assert other_hub != cifs_volume_name("labhub-ab12cd", parse_cifs_share(SHARE), "bob")
