# A lab across several machines on Docker Swarm. Notebooks live on an NFS export that every
# node mounts at the same path (/srv/labhub); the hub runs on a manager node.
import os

import labhub

c = get_config()  # noqa: F821

labhub.configure(
    c,
    spawner="swarm",  # labs on the host network of their node (the default with swarm)
    lab_root="/srv/labhub",
    data_dir=os.environ.get("LABHUB_DATA_DIR", "/srv/jupyterhub/data"),
    image="registry.lab.example/labhub-lab:2026.11",  # every node pulls it from your registry
    # labs on other nodes call the hub's API at the manager's own address
    hub_connect_ip="10.0.0.10",
    mem_limit="8G",
)
# the hub's API listens on that address too (with host networking configure() keeps it on
# loopback, which only a one-node swarm reaches)
c.JupyterHub.hub_ip = "10.0.0.10"

# labs on any worker; the hub reaches them at their node's address
c.LabSwarmSpawner.host_network_ip = "0.0.0.0"
c.LabSwarmSpawner.placement_constraints = ["node.role == worker", "node.labels.lab == true"]
c.LabSwarmSpawner.mem_guarantee = "2G"
# the default on Swarm, said out loud: the hub cannot chown on the NFS export (root squash),
# so a short root task on the node makes each personal folder
c.LabSwarmSpawner.folder_creation = "task"
# a team dataset straight from the NFS server, read-only, with the volume's own options
c.LabSwarmSpawner.lab_read_only_volumes = {"team-datasets": "/home/jovyan/datasets"}
c.LabSwarmSpawner.volume_driver_options = {
    "team-datasets": {
        "type": "nfs",
        "o": "addr=nfs.lab.example,nfsvers=4.2,ro",
        "device": ":/export/datasets",
    },
}
