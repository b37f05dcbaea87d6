"""A Responses call continuing a stored response prefers the deployment that served it
(docs/api.md, "Sticky sessions"), streamed or not, and moves on when that one is disabled."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway
from tests.integration.test_deployments import add_pool, upstream_calls


def test_a_continuation_stays_on_the_deployment_that_served_its_previous_response(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, base = fake_openai
    gw = make_gateway()
    tag = "r" + secrets.token_hex(3)
    a, b = f"ok:{tag}-a", f"ok:{tag}-b"
    add_pool(gw, base, "rpool", a, {"b": {"upstream_model": b}})  # equal weights, not sticky
    client = gw.openai(gw.create_user())
    first = client.responses.create(model="rpool", input="remember the word kiwi")
    [(served, _)] = upstream_calls(fake, tag).items()
    deployment = "default" if served == a else "b"
    assert gw.sql(f"SELECT deployment FROM responses WHERE id = '{first.id}'") == [(deployment,)]
    previous = first.id
    for turn in range(12):  # at random, all twelve on one of two: 1 in 4096
        if turn % 2:
            events = client.responses.create(
                model="rpool", input="and again", previous_response_id=previous, stream=True
            )
            [previous] = [e.response.id for e in events if e.type == "response.completed"]
        else:
            previous = client.responses.create(
                model="rpool", input="and again", previous_response_id=previous
            ).id
    assert upstream_calls(fake, tag) == {served: 13}
    # The stored deployment is what decides: pointed at the other one, the next turn goes there.
    other, other_id = (b, "b") if served == a else (a, "default")
    gw.sql("UPDATE responses SET deployment = ? WHERE id = ?", (other_id, previous))
    previous = client.responses.create(
        model="rpool", input="over there", previous_response_id=previous
    ).id
    assert upstream_calls(fake, tag)[other] == 1
    # A preferred deployment that is disabled is passed over like any other.
    gone = gw.admin("PATCH", "/admin/models/rpool/deployments/b", json={"enabled": False})
    assert gone.status_code == 200
    gw.sql("UPDATE responses SET deployment = 'b' WHERE id = ?", (previous,))
    before = upstream_calls(fake, tag)
    client.responses.create(model="rpool", input="still there?", previous_response_id=previous)
    assert upstream_calls(fake, tag) - before == {a: 1}
