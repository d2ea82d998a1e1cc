"""Certificates that get and renew themselves over ACME (Let's Encrypt, step-ca, a company's own CA)."""
