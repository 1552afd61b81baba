import pytest

from tests.factories import make_catalog


@pytest.fixture
def catalog(db):
    make_catalog()
