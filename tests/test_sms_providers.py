"""The same end to end through every registered SMS provider and its fake (tests/sms_drivers.py):
the invitation and the 24-hour reminder each sent once, the reply `５ 态度太差` rating the case
and confirmed, the same reply pushed again changing nothing, `TD` stopping every message,
a reply before the invitation rating the case so the invitation never goes (the fake counts
the sends), `TD` before the invitation suppressing it, delivery receipts stored in our words
(repeated, and out of order, never going back), and a callback without the key answered 404
with nothing stored.

Where a provider has no such thing by nature the test says so when it skips: the console
prints (no delivery is ever reported; its one HTTP route, the reply, is keyed like the
others); SMPP has no HTTP callbacks at all, its replies and receipts come as deliver_sm on the
session pingjia binds to its SMSC, and the journeys here drive them that way (the fake SMSC's
deliver_sm, a repeated one included).

Bad inputs tried: a repeated reply callback, a repeated receipt, a late `sent`-stage receipt
after `delivered`, callbacks with no key, an empty key and a wrong key on every callback path.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from pingjia.composition import Services
from sms.providers.registry import PLUGINS
from tests.fakes.clock import FakeClock
from tests.sms_drivers import DRIVERS, Driver
from tests.sms_journey import CASE, city, client, driver, inbound_rows, invited, replied
from tests.sms_support import adopted, messages, register
from tests.sms_support import tickets as all_tickets

__all__ = ["city", "client", "driver"]  # fixtures of tests/sms_journey.py used here

# The SDKs use aiohttp APIs that aiohttp deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_every_registered_provider_has_a_driver() -> None:
    assert set(DRIVERS) == set(PLUGINS)
    for name, plugin in PLUGINS.items():
        # Every route the plug-in mounts is tried without the key (its callback_paths, and
        # routes with nothing to register, like the console's reply).
        assert set(DRIVERS[name]().keyed_paths) == set(plugin.callback_docs), name
        assert set(plugin.callback_paths) <= set(plugin.callback_docs), name


async def test_invitation_and_reminder_are_each_sent_once(
    city: Services, clock: FakeClock, driver: Driver
) -> None:
    await invited(city, clock, driver)
    assert await city.sms.send_due_invitations(clock()) == 0
    clock.advance(hours=24)
    assert await city.sms.send_due_reminders(clock()) == 1
    assert await city.sms.send_due_reminders(clock()) == 0
    assert driver.sent(city) == 2
    rows = await messages(city)
    assert [row.kind for row in rows] == ["invitation", "reminder"]
    assert all(row.provider == driver.name and row.provider_sid for row in rows)
    assert {row.status for row in rows} <= {"queued", "sent"}


async def test_a_reply_rates_the_case_once(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient
) -> None:
    await invited(city, clock, driver)
    await replied(city, client, driver, "５ 态度太差", "R1")
    rating = await adopted(city, CASE)
    assert rating is not None and (rating.level, rating.reason) == (5, "态度太差")
    assert rating.channel == "sms"
    assert len(await all_tickets(city)) == 1
    assert driver.sent(city) == 2
    confirmation = (await messages(city))[-1]
    assert f"诉求{CASE}评价已记录：非常不满意" in confirmation.body
    # The provider pushes the same reply again: nothing stored, rated or sent again.
    await replied(city, client, driver, "５ 态度太差", "R1")
    assert await inbound_rows(city) == 1
    assert len((await city.ratings.evaluation(CASE)).ratings) == 1
    assert driver.sent(city) == 2


async def test_td_stops_every_message(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient
) -> None:
    await invited(city, clock, driver)
    await replied(city, client, driver, "TD", "R2")
    assert driver.sent(city) == 2
    assert "已退订" in (await messages(city))[-1].body
    clock.advance(hours=24)
    assert await city.sms.send_due_reminders(clock()) == 0
    await register(city, "C2")
    clock.advance(minutes=3)
    assert await city.sms.send_due_invitations(clock()) == 0
    assert driver.sent(city) == 2


async def test_delivery_receipts_in_our_words(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient
) -> None:
    if driver.no_receipts:
        pytest.skip(driver.no_receipts)
    await invited(city, clock, driver)
    [row] = await messages(city)
    for _ in range(2):  # a repeated receipt changes nothing
        await driver.receipt(client, row, delivered=True)
        [after] = await messages(city)
        assert after.status == "delivered" and after.error is None
    await register(city, "C2", phone="13900001111")
    clock.advance(minutes=3)
    assert await city.sms.send_due_invitations(clock()) == 1
    second = (await messages(city, kind="invitation"))[-1]
    await driver.receipt(client, second, delivered=False)
    second = (await messages(city, kind="invitation"))[-1]
    assert second.status == "undelivered" and second.next_attempt_at is not None
    await driver.receipt(client, row, delivered=False)  # after delivered: never back
    [first, _] = await messages(city, kind="invitation")
    assert first.status == "delivered"


async def test_a_reply_before_the_invitation_rates_and_the_invitation_never_goes(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient
) -> None:
    await register(city)
    clock.advance(seconds=30)  # within the invitation's 2 minutes' grace: nothing sent yet
    assert await city.sms.send_due_invitations(clock()) == 0
    assert driver.sent(city) == 0
    await replied(city, client, driver, "５ 态度太差", "R3")
    rating = await adopted(city, CASE)
    assert rating is not None and (rating.level, rating.reason) == (5, "态度太差")
    assert rating.channel == "sms"
    assert len(await all_tickets(city)) == 1
    [confirmation] = await messages(city)
    assert confirmation.kind == "confirmation"
    assert f"诉求{CASE}评价已记录：非常不满意" in confirmation.body
    assert driver.sent(city) == 1
    # Neither the invitation nor its reminder goes out afterwards: the fake counts no more.
    clock.advance(minutes=3)
    assert await city.sms.send_due_invitations(clock()) == 0
    clock.advance(hours=25)
    assert await city.sms.send_due_reminders(clock()) == 0
    assert await city.sms.retry_failed(clock()) == 0
    assert driver.sent(city) == 1
    assert await messages(city, kind="invitation") == []
    assert await messages(city, kind="reminder") == []


async def test_td_before_the_invitation_suppresses_it(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient
) -> None:
    await register(city)
    clock.advance(seconds=30)
    await replied(city, client, driver, "TD", "R4")
    assert driver.sent(city) == 1
    [answer] = await messages(city)
    assert "已退订" in answer.body
    assert (await city.ratings.evaluation(CASE)).status == "pending"  # an opt-out rates nothing
    clock.advance(minutes=3)
    assert await city.sms.send_due_invitations(clock()) == 0
    [invitation] = await messages(city, kind="invitation")
    assert (invitation.status, invitation.error) == ("suppressed", "number opted out")
    clock.advance(hours=25)
    assert await city.sms.send_due_reminders(clock()) == 0
    assert driver.sent(city) == 1


@pytest.mark.parametrize("query", ["", "?key=", "?key=not-the-key"])
async def test_a_callback_without_the_key_is_404_and_stores_nothing(
    city: Services, clock: FakeClock, driver: Driver, client: TestClient, query: str
) -> None:
    if not driver.keyed_paths:
        pytest.skip(driver.no_http_callbacks)
    await invited(city, clock, driver)
    before = [(row.id, row.status) for row in await messages(city)]
    for path in driver.keyed_paths:
        for body in ('[{"sid": "x"}]', '{"MessageSid": "SM1", "Body": "1"}'):
            response = await client.post(path + query, data=body)
            assert response.status == 404, path
    await city.sms.inbox.intake.drain()
    assert await inbound_rows(city) == 0
    assert [(row.id, row.status) for row in await messages(city)] == before
    assert await adopted(city, CASE) is None


async def test_a_keyless_callback_reads_as_no_route(
    city: Services, driver: Driver, client: TestClient
) -> None:
    if not driver.keyed_paths:
        pytest.skip(driver.no_http_callbacks)
    for path in driver.keyed_paths:
        guarded = await client.post(path + "?key=wrong", data="{}")
        nothing = await client.post(path + "x?key=wrong", data="{}")
        assert (guarded.status, nothing.status) == (404, 404)
        # The same body as a path no route has: the key's paths cannot be told apart.
        unknown = (await nothing.json())["error"]
        assert (await guarded.json())["error"] == {
            "code": unknown["code"],
            "message": unknown["message"].removesuffix(f"{path}x") + path,
        }
        assert unknown["code"] == "not_found" and unknown["message"].endswith(f"{path}x")
