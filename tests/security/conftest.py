"""Fixtures shared by the security suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lowart.testing.comfyui_fake import FakeComfyUI, ThreadedComfyUI


@pytest.fixture
def comfy() -> Iterator[ThreadedComfyUI]:
    with FakeComfyUI.in_thread(fake=FakeComfyUI(step_delay=0.0)) as served:
        yield served
