from tests.issuer.issuer_fixtures import holder_key, officer, passed_check
from tests.verifier.verifier_fixtures import http_verifier
from tests.wallet.wallet_fixtures import enrol, wallet_http

__all__ = ["enrol", "holder_key", "http_verifier", "officer", "passed_check", "wallet_http"]
