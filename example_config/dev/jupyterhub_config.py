# A development lab on one machine: dummy login (any username, one password), loopback only.
#   LABHUB_DUMMY_PASSWORD=choose-one jupyterhub -f example_config/dev/jupyterhub_config.py
import os

import labhub

c = get_config()  # noqa: F821

here = os.path.dirname(os.path.abspath(__file__))
labhub.configure(
    c,
    lab_root=os.environ.get("LABHUB_LAB_ROOT", os.path.join(here, "lab")),
    data_dir=os.environ.get("LABHUB_DATA_DIR", os.path.join(here, "data")),
    auth_mode="dummy",
    ip="127.0.0.1",
    idle_timeout=1800,
)
