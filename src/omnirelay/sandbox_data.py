"""The sandbox's demo data (docs/api.md#sandbox), shared by provisioning and the simulators' set-up.

The sandbox rules: account Aladdin / open sesame; two Facebook applications
(`8F0792F86035A9F4290821F1EE6BC06A` and `FacebookApplicationKey`) on simulated pages; two
registered Messenger users of the first application: `9c29bd43-054b-4cfe-a1d4-0b37812b4ed3`, who
reads every message (a delivery, then a read), and `e5d0c2a8-7b41-4e3f-9c6a-2f1b8e4d7a90`, who
gets every message and never reads one (a delivery only: a SEEN step to them fails over); the
default scenario `CC9F01A5DC7BEE2C2B829D203482A654` = FACEBOOK (first application) then SMS
(`InfoSMS`). No Messenger user has a phone number, so a message addressed by phone number only is
refused by the simulated Messenger (no matching user) and fails over to SMS.
"""

from __future__ import annotations

from omnirelay.ports import MessengerApplication, MessengerUser
from omnirelay.services.scenarios import ScenarioChange

USERNAME = "Aladdin"
PASSWORD = "open sesame"  # noqa: S105 - the documented public sandbox credential
APP_KEY = "8F0792F86035A9F4290821F1EE6BC06A"
APP_KEY_2 = "FacebookApplicationKey"
PAGE_ID = "100000000000001"
PAGE_ID_2 = "100000000000002"
USER_KEY = "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3"
PSID = "2000000000000001"
USER_KEY_UNREAD = "e5d0c2a8-7b41-4e3f-9c6a-2f1b8e4d7a90"  # delivered, never read
PSID_UNREAD = "2000000000000002"
SCENARIO_KEY = "CC9F01A5DC7BEE2C2B829D203482A654"
SMS_SENDER = "InfoSMS"
SMSC_SYSTEM_ID = "omnirelay"
SMSC_PASSWORD = "sandbox"  # noqa: S105 - the simulator's local credential
PAGE_TOKEN = "sandbox-page-token"  # noqa: S105 - only valid against the local Graph simulator
# each Page its own token: the simulator finds a Page by the token a send carries
PAGE_TOKEN_2 = "sandbox-page-token-2"  # noqa: S105
APP_SECRET = "sandbox-app-secret"  # noqa: S105 - signs the local simulator's webhooks
VERIFY_TOKEN = "sandbox-verify-token"  # noqa: S105

USER = MessengerUser(user_key=USER_KEY, application_key=APP_KEY, psid=PSID)
USER_UNREAD = MessengerUser(user_key=USER_KEY_UNREAD, application_key=APP_KEY, psid=PSID_UNREAD)
SCENARIO = ScenarioChange(
    name="Sandbox: Facebook, then SMS",
    flow=[(APP_KEY, "FACEBOOK", None), (SMS_SENDER, "SMS", None)],
    is_default=True,
)


def applications(account_id: int) -> list[MessengerApplication]:
    return [
        MessengerApplication(
            APP_KEY, account_id, "Sandbox application", PAGE_ID, PAGE_TOKEN, APP_SECRET, VERIFY_TOKEN
        ),
        MessengerApplication(
            APP_KEY_2, account_id, "Sandbox application 2", PAGE_ID_2, PAGE_TOKEN_2, APP_SECRET, VERIFY_TOKEN
        ),
    ]
