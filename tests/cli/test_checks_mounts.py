"""``labhub check`` reads lab_root's mount options: a filesystem without nosuid,nodev is a warning."""

from __future__ import annotations

from labhub.cli.checks import lab_root_mount_warning, mount_of

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 8:17 / /srv rw,nosuid,nodev,relatime shared:2 - ext4 /dev/sdb1 rw
31 30 0:40 / /srv/lab\\040data rw,nodev,relatime shared:3 - nfs4 nas:/lab rw
32 22 8:33 / /srvx rw,nosuid,nodev shared:4 - ext4 /dev/sdc1 rw
"""


def test_the_innermost_mount_holding_lab_root_is_the_one_read():
    assert mount_of("/srv/labhub", MOUNTINFO) == ("/srv", {"rw", "nosuid", "nodev", "relatime"})
    # a mount point with a space, escaped in mountinfo; /srvx is not under /srv
    point, options = mount_of("/srv/lab data/personal_notebooks", MOUNTINFO)
    assert point == "/srv/lab data" and "nosuid" not in options
    assert mount_of("/srvlab", MOUNTINFO)[0] == "/"


def test_a_lab_root_without_nosuid_or_nodev_is_one_sentence():
    assert lab_root_mount_warning("/srv/labhub", MOUNTINFO) == ""
    nfs = lab_root_mount_warning("/srv/lab data", MOUNTINFO)
    assert "(/srv/lab data) is mounted without nosuid," in nfs and "nodev," not in nfs
    root = lab_root_mount_warning("/var/labhub", MOUNTINFO)
    assert "without nosuid,nodev" in root and root.endswith("mount it nosuid,nodev")
