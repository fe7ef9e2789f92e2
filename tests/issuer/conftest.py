from tests.issuer.issuer_fixtures import holder_key, officer, passed_check

__all__ = ["holder_key", "officer", "passed_check"]
