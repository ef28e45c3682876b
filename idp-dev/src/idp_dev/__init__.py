"""idp-dev: a small, real OpenID Connect provider for developing and testing Gatepass.

Usage::

    from idp_dev import IdpConfig, run_idp

    with run_idp(IdpConfig.demo()) as idp:
        idp.issuer            # http://127.0.0.1:<port>
        idp.set(wrong_iss=True)
"""

from idp_dev.app import create_app
from idp_dev.config import Client, ConfigError, IdpConfig, User, load_config
from idp_dev.remote import RemoteIdp, run_idp_process
from idp_dev.runner import IdpHandle, run_idp
from idp_dev.switches import Switches

__all__ = [
    "Client",
    "ConfigError",
    "IdpConfig",
    "IdpHandle",
    "RemoteIdp",
    "Switches",
    "User",
    "create_app",
    "load_config",
    "run_idp",
    "run_idp_process",
]
