from tests.submission.stand_in import aisa, direct, stand_in  # noqa: F401 - fixtures of this area's tests
