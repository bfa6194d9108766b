"""`Idempotency-Key` (platform/idempotency.py) on a tiny service, "notebook", on SQLite, PostgreSQL
and MariaDB: replays, reuse, a request in progress, errors kept or not, callers apart, expiry, lease."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel
from sqlalchemy import String, Uuid, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from amazonlite.platform.bus.memory import InProcessTransport
from amazonlite.platform.config import ServiceSettings
from amazonlite.platform.db import Database, create_engine, service_metadata, utcnow
from amazonlite.platform.errors import AppError
from amazonlite.platform.idempotency import (
    IDEMPOTENCY_TABLE,
    Claimed,
    GuestScope,
    IdempotencyRequiredRoute,
    IdempotencySettings,
    IdempotencyStore,
    IdempotentRoute,
    Replay,
    add_idempotency_table,
)
from amazonlite.platform.messaging import add_messaging_tables
from amazonlite.platform.migrations import enable_row_level_security
from amazonlite.platform.revocation import MemoryRevocationStore
from amazonlite.platform.security import INTERNAL_TOKEN_HEADER, Principal, authenticated
from amazonlite.platform.service import ServiceModule, ServiceRuntime, SessionDep, create_service_app
from amazonlite.platform.tenancy import TenantScoped
from tests.support import servers
from tests.support.harness import Harness, fast_platform_settings
from tests.support.logs import Logs

pytestmark = pytest.mark.xdist_group("idempotency")


class Base(DeclarativeBase):
    metadata = service_metadata("notebook")


add_messaging_tables(Base.metadata)
KEYS = add_idempotency_table(Base.metadata)


class NoteRow(TenantScoped, Base):
    __tablename__ = "notes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    text: Mapped[str] = mapped_column(String(100))


class NoteCreate(BaseModel):
    text: str
    tags: list[str] = []


class Note(BaseModel):
    id: uuid.UUID
    text: str


class NoteRefused(AppError):
    status = 422
    type = "note-refused"
    title = "This note is refused"


class NotebookSettings(ServiceSettings):
    service_name: ClassVar[str] = "notebook"


@dataclass
class Gate:
    """Holds a "hold" note inside the endpoint until released."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


GATES: dict[str, Gate] = {}

class NotebookRoute(IdempotentRoute):
    """As the cart's: a guest names its own by a well-formed X-Cart-Id."""

    guest_scope = GuestScope("X-Cart-Id", re.compile(r"^[A-Za-z0-9_-]{16,64}$"))


router = APIRouter(prefix="/api/v1/notes", route_class=NotebookRoute)


@router.post("", status_code=201, response_model=Note)
async def add_note(data: NoteCreate, session: SessionDep, response: Response,
                   draft: Annotated[bool, Query()] = False) -> Note:
    """Adds a note; "fail" raises (500), "refuse" is a 422 problem, "hold:<id>" waits for its gate."""
    if data.text.startswith("hold:"):
        # Before any write: on SQLite a write transaction held open would lock out every other writer.
        gate = GATES[data.text]
        gate.entered.set()
        await gate.release.wait()
    row = NoteRow(text=data.text)
    session.add(row)
    await session.flush()
    if data.text == "fail":
        raise RuntimeError("boom")
    if data.text == "refuse":
        raise NoteRefused("No")
    response.headers["Location"] = f"/api/v1/notes/{row.id}"
    response.headers["X-Cart-Id"] = "cart-1"
    response.headers["X-Ignored"] = str(uuid.uuid4())
    return Note(id=row.id, text=row.text)


@router.post("/signed", status_code=201, dependencies=[Depends(authenticated)])
async def add_signed_note(session: SessionDep) -> dict[str, int]:
    session.add(NoteRow(text="signed"))
    return {"added": 1}


@router.delete("/{text}", status_code=204)
async def delete_notes(text: str, session: SessionDep) -> None:
    for row in (await session.scalars(select(NoteRow).where(NoteRow.text == text))).all():
        await session.delete(row)


@router.get("")
async def count_notes(session: SessionDep) -> dict[str, int]:
    return {"count": int(await session.scalar(select(func.count()).select_from(NoteRow)) or 0)}


checkout = APIRouter(prefix="/api/v1/checkout", route_class=IdempotencyRequiredRoute)


@checkout.post("", status_code=202)
async def check_out(session: SessionDep) -> dict[str, int]:
    session.add(NoteRow(text="order"))
    return {"placed": 1}


main_router = APIRouter()
main_router.include_router(router)
main_router.include_router(checkout)

MODULE = ServiceModule(name="notebook", router=main_router, metadata=Base.metadata, settings=NotebookSettings,
                       migrations=Path(__file__).parent / "no-migrations")


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per backend for the module; each test works in a tenant of its own."""
    with servers.database(request.param, tmp_path_factory.mktemp("notebook") / "notebook.sqlite3") as url:
        yield url


class Clock:
    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@dataclass
class Notebook:
    harness: Harness
    tenant: str
    clock: Clock

    def client(self, *, user: str | None = "alice", tenant: str | None = None, address: str | None = None,
               headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        """A client as the gateway would call (for `user`, from the client `address`); an unhandled error
        comes back as the 500 the client sees."""
        principal = Principal(tenant_id=tenant or self.tenant, user_id=user, client_address=address,
                              roles=frozenset({"customer"}) if user else frozenset())
        token = self.harness.runtime.internal_tokens.mint(principal, audience="notebook", caller="test")
        signed = {INTERNAL_TOKEN_HEADER: token}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.harness.app, raise_app_exceptions=False),
                                 base_url="http://test", headers={**signed, **(headers or {})})

    async def count(self) -> int:
        async with self.client() as client:
            return int((await client.get("/api/v1/notes")).json()["count"])


@pytest.fixture
async def notebook(database_url: str, tmp_path: Path) -> AsyncIterator[Notebook]:
    runtime = ServiceRuntime(MODULE, fast_platform_settings(tmp_path), transport=InProcessTransport(),
                             revocations=MemoryRevocationStore(),
                             settings=NotebookSettings(database_url=database_url))
    async with runtime.db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    clock = Clock()
    runtime.state.idempotency = IdempotencyStore(
        runtime.db, KEYS, IdempotencySettings(ttl_seconds=3600, lease_seconds=60), clock=clock)
    try:
        yield Notebook(Harness(runtime, create_service_app(runtime, own_lifespan=False)),
                       f"t-{uuid.uuid4().hex[:10]}", clock)
    finally:
        await runtime.db.dispose()


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"key-{uuid.uuid4()}"}


async def add(client: httpx.AsyncClient, text: str, headers: dict[str, str] | None = None,
              **params: Any) -> httpx.Response:
    return await client.post("/api/v1/notes", json={"text": text}, headers=headers or {}, params=params)


def problem_type(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


class TestReplay:
    async def test_same_key_same_request_answers_as_the_first_did_once(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client() as client:
            first = await add(client, "milk", headers)
            again = await client.post("/api/v1/notes", content=b'{ "text" : "milk" }',
                                      headers={**headers, "content-type": "application/json"})
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        for name in ("location", "x-cart-id", "content-type"):
            assert again.headers[name] == first.headers[name]
        assert "x-ignored" not in again.headers
        assert await notebook.count() == 1

    async def test_without_a_key_every_request_runs(self, notebook: Notebook) -> None:
        async with notebook.client() as client:
            first, second = await add(client, "milk"), await add(client, "milk")
        assert first.json()["id"] != second.json()["id"]
        assert await notebook.count() == 2

    async def test_a_4xx_the_endpoint_raised_is_replayed(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client() as client:
            first = await add(client, "refuse", headers)
            again = await add(client, "refuse", headers)
        assert first.status_code == again.status_code == 422
        assert problem_type(again) == "note-refused"
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/problem+json"

    async def test_a_5xx_is_not_kept_and_a_retry_runs_again(self, notebook: Notebook, logs: Logs) -> None:
        headers = key()
        async with notebook.client() as client:
            first = await add(client, "fail", headers)
            again = await add(client, "fail", headers)
            # The key is free again: a corrected request under it runs.
            fixed = await client.post("/api/v1/notes", json={"text": "fine"}, headers=headers)
        assert first.status_code == again.status_code == 500
        assert "idempotent-replayed" not in again.headers
        assert fixed.status_code == 201
        assert await notebook.count() == 1  # the failed ones were rolled back
        assert [line["event"] for line in logs() if line["level"] == "error"].count("http.unhandled_error") == 2

    async def test_an_empty_answer_is_replayed_empty(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client() as client:
            await add(client, "milk")
            deleted = await client.delete("/api/v1/notes/milk", headers=headers)
            await add(client, "milk")
            replayed = await client.delete("/api/v1/notes/milk", headers=headers)
        assert deleted.status_code == replayed.status_code == 204
        assert replayed.content == b"" and replayed.headers["idempotent-replayed"] == "true"
        assert await notebook.count() == 1  # the second note was not deleted by the replay

    async def test_sign_in_first_is_not_kept(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client(user=None) as anonymous:
            refused = await anonymous.post("/api/v1/notes/signed", headers=headers)
            again = await anonymous.post("/api/v1/notes/signed", headers=headers)
        assert refused.status_code == again.status_code == 401
        assert "idempotent-replayed" not in again.headers

    async def test_anonymous_on_a_signed_in_route_is_401_whatever_its_key_was_used_for(
            self, notebook: Notebook) -> None:
        """Authentication comes first: a key an anonymous caller used elsewhere is no 409 here."""
        headers = key()
        async with notebook.client(user=None) as anonymous:
            kept = await add(anonymous, "first", headers)
            refused = await anonymous.post("/api/v1/notes/signed", headers=headers)
        assert kept.status_code == 201
        assert refused.status_code == 401 and problem_type(refused) == "unauthorized"

    async def test_required_key_is_required_on_its_routes_only(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client() as client:
            missing = await client.post("/api/v1/checkout")
            placed = await client.post("/api/v1/checkout", headers=headers)
            replayed = await client.post("/api/v1/checkout", headers=headers)
        assert missing.status_code == 400
        assert problem_type(missing) == "idempotency-key-required"
        assert placed.status_code == replayed.status_code == 202
        assert replayed.headers["idempotent-replayed"] == "true"
        assert await notebook.count() == 1


class TestConflicts:
    async def test_same_key_another_request_is_409(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client() as client:
            assert (await add(client, "milk", headers)).status_code == 201
            other_body = await add(client, "eggs", headers)
            other_query = await add(client, "milk", headers, draft="true")
        for response in (other_body, other_query):
            assert response.status_code == 409
            assert problem_type(response) == "idempotency-key-reused"
        assert await notebook.count() == 1

    async def test_a_duplicate_while_the_first_runs_is_409_then_replayed(self, notebook: Notebook) -> None:
        text = f"hold:{uuid.uuid4()}"
        gate = GATES[text] = Gate()
        headers = key()
        async with notebook.client() as client:
            first = asyncio.create_task(add(client, text, headers))
            await asyncio.wait_for(gate.entered.wait(), 10)
            duplicate = await add(client, text, headers)
            gate.release.set()
            first_response = await first
            later = await add(client, text, headers)
        assert duplicate.status_code == 409
        assert problem_type(duplicate) == "request-in-progress"
        assert duplicate.headers["retry-after"] == "1"
        assert first_response.status_code == 201
        assert later.json() == first_response.json()
        assert await notebook.count() == 1

    @pytest.mark.parametrize("bad", ["", "x" * 256, "caf\u00e9", "tab\there", " padded", "padded "])
    async def test_bad_keys_are_400(self, notebook: Notebook, bad: str) -> None:
        async with notebook.client() as client:
            response = await client.post("/api/v1/notes", json={"text": "milk"},
                                         headers=[(b"Idempotency-Key", bad.encode("latin-1"))])
        assert response.status_code == 400
        assert problem_type(response) == "invalid-idempotency-key"
        assert await notebook.count() == 0


class TestScope:
    async def test_one_callers_key_never_replays_anothers_answer(self, notebook: Notebook) -> None:
        headers = key()
        callers = [notebook.client(user="alice"), notebook.client(user="bob"),
                   notebook.client(user=None, headers={"X-Cart-Id": "cart-a" * 4}),
                   notebook.client(user=None, headers={"X-Cart-Id": "cart-b" * 4}),
                   notebook.client(user=None), notebook.client(user="alice", tenant=f"{notebook.tenant}-x")]
        ids = set()
        for client in callers:
            async with client:
                response = await add(client, "milk", headers)
            assert response.status_code == 201
            assert "idempotent-replayed" not in response.headers
            ids.add(response.json()["id"])
        assert len(ids) == len(callers)

    async def test_anonymous_callers_share_keys_from_one_address_only(self, notebook: Notebook) -> None:
        headers = key()
        answers = []
        for address in ("203.0.113.7", "203.0.113.7", "198.51.100.2"):
            async with notebook.client(user=None, address=address) as client:
                answers.append(await add(client, "milk", headers))
        first, same_address, elsewhere = answers
        assert same_address.json() == first.json()
        assert same_address.headers["idempotent-replayed"] == "true"
        assert elsewhere.json()["id"] != first.json()["id"]
        assert "idempotent-replayed" not in elsewhere.headers


    @pytest.mark.parametrize("cart_id", ["null", "undefined", "x" * 65])
    async def test_an_x_cart_id_that_names_no_cart_scopes_nothing(self, notebook: Notebook, cart_id: str) -> None:
        """Guests sending the same malformed X-Cart-Id (a common client bug) from different addresses
        are different callers: one never gets the other's answer."""
        headers = key()
        answers = []
        for address in ("203.0.113.7", "198.51.100.2"):
            async with notebook.client(user=None, address=address, headers={"X-Cart-Id": cart_id}) as client:
                answers.append(await add(client, "milk", headers))
        here, elsewhere = answers
        assert (here.status_code, elsewhere.status_code) == (201, 201)
        assert "idempotent-replayed" not in elsewhere.headers
        assert elsewhere.json()["id"] != here.json()["id"]


class TestTime:
    async def test_an_expired_key_is_forgotten_and_purged(self, notebook: Notebook) -> None:
        headers = key()
        async with notebook.client() as client:
            first = await add(client, "milk", headers)
            notebook.clock.advance(seconds=3601)
            again = await add(client, "milk", headers)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert again.json()["id"] != first.json()["id"]
        store = notebook.harness.runtime.state.idempotency
        notebook.clock.advance(seconds=3601)
        assert await store.purge_expired() >= 1
        async with notebook.harness.runtime.db.engine.connect() as conn:
            left = await conn.scalar(select(func.count()).select_from(KEYS).where(KEYS.c.tenant_id == notebook.tenant))
        assert left == 0

    async def test_an_abandoned_claim_is_taken_over_after_the_lease(self, notebook: Notebook) -> None:
        text = f"hold:{uuid.uuid4()}"
        gate = GATES[text] = Gate()
        headers = key()
        async with notebook.client() as client:
            # The first request stalls (as a process that died mid-request would never finish).
            stalled = asyncio.create_task(add(client, text, headers))
            await asyncio.wait_for(gate.entered.wait(), 10)
            other = await add(client, "eggs", headers)
            notebook.clock.advance(seconds=61)
            gate2 = GATES[text] = Gate()
            gate2.release.set()
            retried = await add(client, text, headers)
            # The stalled request ends later: its claim was taken over, the retry's answer stands.
            gate.release.set()
            await stalled
            replayed = await add(client, text, headers)
        assert problem_type(other) == "idempotency-key-reused"  # a stale claim is not another request's
        assert retried.status_code == 201
        assert replayed.json() == retried.json()
        assert replayed.headers["idempotent-replayed"] == "true"


@pytest.mark.postgres
class TestRowLevelSecurity:
    async def test_keys_work_for_a_role_bound_by_row_level_security(self, postgres_url: str) -> None:
        """As a service's own role (no superuser, no BYPASSRLS) on a table its migration put under
        row-level security: each tenant claims and replays its own keys, and the purge spans tenants."""
        url = postgres_url
        engine = create_engine(url)
        role = f"al_idem_{uuid.uuid4().hex[:8]}"

        def migrate(connection: Any) -> None:
            KEYS.create(connection)
            with Operations.context(MigrationContext.configure(connection)):
                enable_row_level_security(IDEMPOTENCY_TABLE)

        async with engine.begin() as conn:
            await conn.run_sync(migrate)
            for statement in (f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS',
                              f'GRANT USAGE ON SCHEMA public TO "{role}"',
                              f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{IDEMPOTENCY_TABLE}" TO "{role}"'):
                await conn.execute(text(statement))
        clock = Clock()
        db = Database(url.replace("postgres@", f"{role}@", 1), service="notebook")
        store = IdempotencyStore(db, KEYS, IdempotencySettings(ttl_seconds=60), clock=clock)
        try:
            claims = {t: await store.claim(t, "k" * 64, "f" * 64) for t in ("acme", "globex")}
            assert all(isinstance(c, Claimed) for c in claims.values())
            for tenant, claim in claims.items():
                assert isinstance(claim, Claimed)
                assert await store.complete(tenant, "k" * 64, claim, 201, [("content-type", "text/plain")],
                                            tenant.encode())
            replay = await store.claim("acme", "k" * 64, "f" * 64)
            assert isinstance(replay, Replay) and replay.body == b"acme"
            async with db.session(tenant_id="acme") as session:
                assert (await session.scalars(select(KEYS.c.tenant_id))).all() == ["acme"]
            clock.advance(seconds=61)
            assert await store.purge_expired() == 2
        finally:
            await db.dispose()
            async with engine.begin() as conn:
                for statement in (f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"',
                                  f'REVOKE ALL ON SCHEMA public FROM "{role}"', f'DROP ROLE "{role}"'):
                    await conn.execute(text(statement))
            await engine.dispose()


class TestDocument:
    def test_unsafe_routes_document_the_header_and_the_problems(self) -> None:
        from fastapi import FastAPI

        from amazonlite.platform.service import service_openapi

        app = FastAPI()
        app.include_router(main_router)
        document = service_openapi(app)
        post = document["paths"]["/api/v1/notes"]["post"]
        header = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
        assert header["in"] == "header" and header["required"] is False
        assert header["schema"]["maxLength"] == 255
        assert header["schema"]["type"] == "string"
        assert "idempotency-key-reused" in post["responses"]["409"]["description"]
        assert "request-in-progress" in post["responses"]["409"]["description"]
        assert "invalid-idempotency-key" in post["responses"]["400"]["description"]
        required = next(p for p in document["paths"]["/api/v1/checkout"]["post"]["parameters"]
                        if p["name"] == "Idempotency-Key")
        assert required["required"] is True
        get = document["paths"]["/api/v1/notes"]["get"]
        assert all(p["name"] != "Idempotency-Key" for p in get.get("parameters", ()))
        assert IDEMPOTENCY_TABLE in Base.metadata.tables
