"""Scenario use cases: create, read, list, partial update, delete (docs/api.md#scenarios)."""

from __future__ import annotations

from dataclasses import dataclass

from omnirelay.domain.errors import NotFound, ValidationFailed
from omnirelay.domain.scenarios import RawStep, Scenario, check_flow, check_name, new_key
from omnirelay.ports import ApplicationKeys, Clock, ScenarioStore

RawFlow = list[RawStep]


@dataclass(frozen=True, slots=True)
class ScenarioChange:
    name: str | None = None
    flow: RawFlow | None = None
    is_default: bool | None = None


class Scenarios:
    def __init__(self, store: ScenarioStore, applications: ApplicationKeys, clock: Clock) -> None:
        self._store = store
        self._applications = applications
        self._clock = clock

    async def _app_keys(self, account_id: int) -> set[str]:
        return {a.key for a in await self._applications.list_applications(account_id)}

    async def create(self, account_id: int, change: ScenarioChange, key: str | None = None) -> Scenario:
        name = check_name(change.name)
        flow = check_flow(change.flow, await self._app_keys(account_id))
        scenario = Scenario(key or new_key(), name, flow, bool(change.is_default))
        return await self._store.create(account_id, scenario, self._clock.now())

    async def get(self, account_id: int, key: str) -> Scenario:
        found = await self._store.get(account_id, key)
        if found is None:
            raise NotFound("Scenario not found")
        return found

    async def list(self, account_id: int, is_default: bool | None, page: int, limit: int) -> list[Scenario]:
        return await self._store.list(account_id, is_default, page, limit)

    async def update(self, account_id: int, key: str, change: ScenarioChange) -> Scenario:
        """Fields left out keep their values; a `flow` that is present replaces the whole flow."""
        current = await self.get(account_id, key)
        name = check_name(change.name) if change.name is not None else current.name
        flow = (
            current.flow if change.flow is None else check_flow(change.flow, await self._app_keys(account_id))
        )
        is_default = current.is_default if change.is_default is None else change.is_default
        updated = Scenario(key, name, flow, is_default)
        if not await self._store.update(account_id, updated):
            raise NotFound("Scenario not found")
        return updated

    async def delete(self, account_id: int, key: str) -> None:
        if not await self._store.delete(account_id, key):
            raise NotFound("Scenario not found")

    async def resolve(self, account_id: int, key: str | None) -> Scenario:
        """The scenario a send uses: the named one, else the account's default (400 if neither)."""
        if key is None:
            default = await self._store.default(account_id)
            if default is None:
                raise ValidationFailed(field="scenarioKey", problem="Default scenario not found")
            return default
        found = await self._store.get(account_id, key)
        if found is None:
            raise ValidationFailed(field="scenarioKey", problem=f"scenario {key} not found")
        return found
