"""One ACME order over HTTP-01 with the certbot project's acme library: account, challenge, certificate."""

from __future__ import annotations

import datetime
import re
from collections.abc import MutableMapping
from dataclasses import dataclass

import josepy
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

#: How long the CA may take to validate the challenge and issue, per order.
ORDER_SECONDS = 90
#: Seconds for each request to the ACME server.
NETWORK_TIMEOUT = 30


class OrderError(RuntimeError):
    """No certificate came from the CA; the message is the reason, in words an admin can act on."""


@dataclass(frozen=True)
class OrderRequest:
    """What one order needs: the domain, the CA's directory and how to trust it, the contact address."""

    domain: str
    directory: str
    email: str = ""
    ca_bundle: str = ""


@dataclass(frozen=True)
class Issued:
    """A certificate the CA issued: its private key and the full chain (leaf first), both PEM."""

    key_pem: bytes
    fullchain_pem: bytes


def _problem(err: messages.Error) -> str:
    return (err.detail or err.title or err.typ or "no reason given").strip().rstrip(".")


def order_reason(err: BaseException, request: OrderRequest) -> str:
    """The CA's reason for a failed order (or why the CA could not be asked), as a clause."""
    if isinstance(err, requests.exceptions.SSLError):
        return (
            f"the ACME server {request.directory} presents a TLS certificate this machine does "
            "not trust (set acme_ca_bundle to its CA)"
        )
    if isinstance(err, requests.exceptions.RequestException):
        # requests wraps the socket's error in two layers of its own; the errno's words say most
        found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))
        why = found.group(1).strip().lower() if found else type(err).__name__
        return f"the ACME server {request.directory} cannot be reached ({why})"
    if isinstance(err, errors.ValidationError):
        problems = [
            _problem(challenge.error)
            for authz in err.failed_authzrs
            for challenge in authz.body.challenges
            if challenge.error is not None
        ]
        return "the CA could not validate the HTTP-01 challenge: " + "; ".join(problems)
    if isinstance(err, errors.TimeoutError):
        return f"the CA did not validate the challenge and issue within {ORDER_SECONDS} s"
    if isinstance(err, errors.IssuanceError):
        return "the CA refused to issue: " + _problem(err.error)
    if isinstance(err, messages.Error):
        return "the CA refused the order: " + _problem(err)
    return f"{type(err).__name__}: {err}".strip().rstrip(".")


def _network(account_key: rsa.RSAPrivateKey, request: OrderRequest) -> client.ClientNetwork:
    return client.ClientNetwork(
        josepy.JWKRSA(key=account_key),
        alg=josepy.RS256,
        verify_ssl=request.ca_bundle or True,
        user_agent="labhub",
        timeout=NETWORK_TIMEOUT,
    )


def _account(acme: client.ClientV2, email: str) -> None:
    """Register the account key, or find the account it already has (the CA answers with its URL)."""
    contact = {"email": email} if email else {}
    registration = messages.NewRegistration.from_data(terms_of_service_agreed=True, **contact)
    try:
        acme.new_account(registration)
    except errors.ConflictError as existing:
        acme.net.account = messages.RegistrationResource(
            uri=existing.location, body=messages.Registration()
        )


def obtain(
    request: OrderRequest,
    account_key: rsa.RSAPrivateKey,
    answers: MutableMapping[str, str],
) -> Issued:
    """Order a certificate for ``request.domain``, publishing each HTTP-01 answer in ``answers``.

    ``answers`` maps a challenge path (``/.well-known/acme-challenge/TOKEN``) to the
    key authorization the challenge server must return; entries are removed again when
    the order ends. A new key is made for every certificate. Raises :class:`OrderError`.
    """
    published: list[str] = []
    try:
        net = _network(account_key, request)
        acme = client.ClientV2(client.ClientV2.get_directory(request.directory, net), net)
        _account(acme, request.email)
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        order = acme.new_order(crypto_util.make_csr(key_pem, [request.domain]))
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # the CA still trusts an earlier validation of this domain
            http01 = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)]
            if not http01:
                raise OrderError("the CA offers no HTTP-01 challenge for this domain")
            response, validation = http01[0].response_and_validation(net.key)
            answers[http01[0].chall.path] = validation
            published.append(http01[0].chall.path)
            acme.answer_challenge(http01[0], response)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_SECONDS)
        order = acme.poll_and_finalize(order, deadline)
    except OrderError:
        raise
    except Exception as err:  # the acme library, requests and josepy each raise their own kinds
        raise OrderError(order_reason(err, request)) from err
    finally:
        for path in published:
            answers.pop(path, None)
    return Issued(key_pem, order.fullchain_pem.encode())
