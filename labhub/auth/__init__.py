"""LabAuthenticator: a development login or LDAP / Active Directory, chosen by one setting."""

from .authenticator import LabAuthenticator

__all__ = ["LabAuthenticator"]
