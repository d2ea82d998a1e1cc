# A lab whose users also see two Windows shares: a team share with a service account,
# and each person's home share mounted with their own login (kept encrypted in auth_state).
import os

import labhub

c = get_config()  # noqa: F821

labhub.configure(
    c,
    lab_root="/srv/labhub",
    data_dir=os.environ.get("LABHUB_DATA_DIR", "/srv/jupyterhub/data"),
    ldap_servers=["dc1.corp.example"],
    ldap_tls="on_connect",
    ldap_search_user="CN=svc-jupyter,OU=Service Accounts,DC=corp,DC=example",
    ldap_search_password=os.environ.get("LABHUB_LDAP_SEARCH_PASSWORD", ""),
    ldap_user_search_base="OU=Staff,DC=corp,DC=example",
    ldap_user_attribute="sAMAccountName",
    ldap_allowed_groups=["CN=DataScience,OU=Groups,DC=corp,DC=example"],
)

# the user's own password is needed for their home share: keep it, encrypted
c.Authenticator.enable_auth_state = True  # needs JUPYTERHUB_CRYPT_KEY (see .env)
c.LabAuthenticator.store_password = True

c.LabDockerSpawner.cifs_shares = [
    {
        "name": "team",
        "device": "//fileserver.corp.example/datascience",
        "mount_path": "/home/jovyan/team-share",
        "credentials": "file",
        "credentials_file": "/etc/labhub/cifs-team.cred",  # username=, password=, domain= (0600)
        "options": {"vers": "3.0"},
    },
    {
        "name": "home",
        "device": "//fileserver.corp.example/homes/{raw_username}",
        "mount_path": "/home/jovyan/windows-home",
        "credentials": "auth_state",
        "options": {"vers": "3.0", "sec": "ntlmssp"},
    },
]
