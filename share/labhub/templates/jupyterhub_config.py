# jupyterhub_config.py written by `labhub init`. Every setting below can be changed with a
# LABHUB_* variable in .env; lines you add after configure() win over it.
import labhub

c = get_config()  # noqa: F821

labhub.configure(
    c,
    data_dir="/srv/jupyterhub/data",
    ssl_cert="/srv/jupyterhub/ssl/labhub.crt",
    ssl_key="/srv/jupyterhub/ssl/labhub.key",
    uid_strategy="docker-stacks",
)
