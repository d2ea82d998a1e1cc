# A production lab with single sign-on through Keycloak (any OpenID Connect provider works alike).
# The client secret comes from the environment (.env of `labhub init`), never from this file.
import os

import labhub

c = get_config()  # noqa: F821

labhub.configure(
    c,
    lab_root="/srv/labhub",
    data_dir=os.environ.get("LABHUB_DATA_DIR", "/srv/jupyterhub/data"),
    ip="0.0.0.0",
    ssl_cert=os.environ.get("LABHUB_SSL_CERT", "/etc/labhub/lab.crt"),
    ssl_key=os.environ.get("LABHUB_SSL_KEY", "/etc/labhub/lab.key"),
    auth_mode="oidc",
    public_url="https://lab.example.org",  # register https://lab.example.org/hub/oauth_callback
    oidc_issuer="https://keycloak.example.org/realms/lab",
    oidc_client_id="labhub",
    oidc_client_secret=os.environ.get("LABHUB_OIDC_CLIENT_SECRET", ""),
    oidc_allowed_groups=["lab-users"],
    oidc_admin_groups=["lab-admins"],
    oidc_provider_name="Keycloak",
    lab_name="Data Science Lab",
    login_message="Sign in with your institute account.",
    mem_limit="8G",
    cpu_limit=4,
)

# profiles keyed on the provider's groups, exactly as with LDAP groups
c.LabDockerSpawner.profile_list = [
    {"display_name": "Standard", "slug": "standard", "default": True},
    {
        "display_name": "Big memory (GPU team)",
        "slug": "bigmem",
        "allowed_groups": ["gpu-users"],
        "spawner_override": {"mem_limit": "32G"},
    },
]
