from tests.verifier.verifier_fixtures import http_verifier, make_holder

__all__ = ["http_verifier", "make_holder"]
