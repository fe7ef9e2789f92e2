from tests.verifier.verifier_fixtures import http_verifier
from tests.wallet.wallet_fixtures import enrol, wallet_http

__all__ = ["enrol", "http_verifier", "wallet_http"]
