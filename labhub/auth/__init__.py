"""LabAuthenticator: a development login or LDAP / Active Directory, chosen by one setting."""

from labhub.auth.authenticator import LabAuthenticator

__all__ = ["LabAuthenticator"]
