"""The lab spawners: the traits an admin sets, the spawn lifecycle, LabDockerSpawner and LabSwarmSpawner."""
