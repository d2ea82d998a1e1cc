# A production lab logging in against Active Directory (LDAPS, two domain controllers).
# Secrets come from the environment (.env of `labhub init`), never from this file.
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
    auth_mode="ldap",
    ldap_servers=["dc1.corp.example", "dc2.corp.example"],
    ldap_tls="on_connect",
    ldap_ca_file="/etc/labhub/corp-ca.pem",
    ldap_search_user="CN=svc-jupyter,OU=Service Accounts,DC=corp,DC=example",
    ldap_search_password=os.environ.get("LABHUB_LDAP_SEARCH_PASSWORD", ""),
    ldap_user_search_base="OU=Staff,DC=corp,DC=example",
    ldap_user_attribute="sAMAccountName",
    ldap_allowed_groups=["CN=DataScience,OU=Groups,DC=corp,DC=example"],
    ldap_admin_groups=["CN=LabAdmins,OU=Groups,DC=corp,DC=example"],
    uid_strategy="docker-stacks",
    image="labhub-lab:latest",
    mem_limit="8G",
    cpu_limit=4,
)
