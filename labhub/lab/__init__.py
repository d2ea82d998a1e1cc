"""What a lab is, as plain data: the lab description and its Docker and Swarm translations, mounts, names, folders."""
