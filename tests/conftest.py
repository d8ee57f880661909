from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Never reach a real AWS account from tests, whatever the developer's shell holds.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from moto import mock_aws

from crm_local.provision import provision
from crm_local.runtime import environment, reset_process_state
from crm_local.template import load_template
from tests.harness import Suite


@pytest.fixture
def suite() -> Iterator[Suite]:
    """Every resource of template.yaml in moto, and the functions' environment set."""
    with mock_aws():
        template = load_template()
        stack = provision(template)
        env: dict[str, str] = {}
        for spec in template.functions():
            env.update(stack.environment(spec))
        with environment(env):
            reset_process_state()
            yield Suite(stack)
        reset_process_state()
