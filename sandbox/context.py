"""Everything one sandbox instance holds, built once by ``create_app`` and shared by routes."""

from __future__ import annotations

from dataclasses import dataclass

from ayoconnect.settings import AyoconnectSettings

from .callbacks import CallbackDispatcher
from .clock import SandboxClock
from .db import Database
from .faults import FaultInjector
from .idempotency import IdempotencyStore
from .keys import private_key_pem, public_key_pem
from .ledger import Ledger
from .sessions import Sessions
from .settings import SandboxSettings
from .tokens import TokenStore

_CLOCK_KEY = "clock_offset_seconds"


@dataclass
class SandboxContext:
    settings: SandboxSettings
    ayoconnect: AyoconnectSettings
    db: Database
    clock: SandboxClock
    ledger: Ledger
    sessions: Sessions
    tokens: TokenStore
    idempotency: IdempotencyStore
    faults: FaultInjector
    callbacks: CallbackDispatcher
    private_key_pem: str
    public_key_pem: str

    @classmethod
    def build(cls, settings: SandboxSettings, ayoconnect: AyoconnectSettings) -> SandboxContext:
        db = Database(settings.db_path)
        stored_offset = db.get_meta(_CLOCK_KEY)
        clock = SandboxClock(
            float(stored_offset) if stored_offset else 0.0,
            on_change=lambda offset: db.set_meta(_CLOCK_KEY, repr(offset)),
        )
        faults = FaultInjector(settings.faults, settings.fault_seed)
        private_pem = private_key_pem(settings, db)
        return cls(
            settings=settings,
            ayoconnect=ayoconnect,
            db=db,
            clock=clock,
            ledger=Ledger(db),
            sessions=Sessions(db),
            tokens=TokenStore(db),
            idempotency=IdempotencyStore(db),
            faults=faults,
            callbacks=CallbackDispatcher(db, clock, faults, settings, ayoconnect),
            private_key_pem=private_pem,
            public_key_pem=public_key_pem(private_pem),
        )

    async def reset(self) -> None:
        """Back to a fresh sandbox: empty ledger, clock at wall time, configured faults."""
        await self.callbacks.reset()
        self.db.reset()
        self.clock.reset()
        self.faults.reset()
