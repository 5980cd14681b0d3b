"""Client of the ``/_sandbox/*`` controls, for tests and local tooling.

control = SandboxControl(base_url)
await control.advance_clock(3601)
await control.set_faults({"create_charge": {"fail_next": 2, "status": 503}})
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

import httpx

from ayoconnect.tls import tls_context


class SandboxControl:
    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(
            base_url=base_url, timeout=10.0, verify=tls_context()
        )
        self._owns_http = http is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def reset(self) -> None:
        await self._call("POST", "/_sandbox/reset")

    async def clock(self) -> dict[str, Any]:
        return await self._call("GET", "/_sandbox/clock")

    async def advance_clock(self, seconds: float) -> dict[str, Any]:
        return await self._call("POST", "/_sandbox/clock/advance", json={"seconds": seconds})

    async def ledger(self) -> dict[str, Any]:
        return await self._call("GET", "/_sandbox/ledger")

    async def callbacks_settled(self, timeout: float = 30.0) -> None:
        """Wait until no callback is pending: each delivered (or given up on) and its delivery
        recorded, so that two ledger snapshots differ only by what the caller did."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            callbacks = (await self.ledger())["callbacks"]
            if all(c["state"] != "pending" for c in callbacks):
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"sandbox callbacks still pending after {timeout} s")
            await asyncio.sleep(0.05)

    async def payment(self, original_transaction_id: str) -> dict[str, Any] | None:
        """The ledger's payment started by this transactionId, or None."""
        for payment in (await self.ledger())["payments"]:
            if payment["originalTransactionId"] == original_transaction_id:
                found: dict[str, Any] = payment
                return found
        return None

    async def faults(self) -> dict[str, Any]:
        return await self._call("GET", "/_sandbox/faults")

    async def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        return await self._call("PUT", "/_sandbox/faults", json=faults)

    async def clear_faults(self) -> dict[str, Any]:
        return await self._call("DELETE", "/_sandbox/faults")

    async def set_callback_url(self, url: str | None) -> None:
        await self._call("PUT", "/_sandbox/callback-url", json={"url": url})

    async def test_cards(self) -> dict[str, Any]:
        return await self._call("GET", "/_sandbox/test-cards")

    async def public_key(self) -> str:
        response = await self._http.get("/_sandbox/public-key")
        response.raise_for_status()
        return response.text

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()
