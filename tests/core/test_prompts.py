"""Words the core understands as commands rather than questions."""

import pytest

from core.prompts import is_stop_request


@pytest.mark.parametrize("text", ["stop", "Stop!", " STOP. ", "cancel", "stop it", "abort"])
def test_stop_said_on_its_own_is_a_stop_request(text):
    assert is_stop_request(text)


@pytest.mark.parametrize(
    "text", ["", "stop the build when tests fail", "how do I stop a container?", "bus stop"]
)
def test_stop_inside_a_question_is_a_question(text):
    assert not is_stop_request(text)
