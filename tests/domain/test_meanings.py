"""Every portal lifecycle and every close code has its meaning (seed 004) for the portal."""

from domain.enums import Lifecycle
from domain.lifecycle import LIFECYCLE_MEANINGS
from domain.transitions import CLOSE_CODE_MEANINGS, CloseCode


def test_every_lifecycle_and_close_code_is_explained() -> None:
    assert set(LIFECYCLE_MEANINGS) == set(Lifecycle)
    assert set(CLOSE_CODE_MEANINGS) == set(CloseCode)
    assert all(
        text.endswith(".") for text in [*LIFECYCLE_MEANINGS.values(), *CLOSE_CODE_MEANINGS.values()]
    )
