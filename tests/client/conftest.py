"""The typed client, acting as the stack's admin."""

import pytest

from tests.conftest_stack import Stack
from tollgate_client import AsyncTollgate


@pytest.fixture
def tollgate(stack: Stack) -> AsyncTollgate:
    return AsyncTollgate(str(stack.http.base_url), stack.admin_token, http=stack.http)
