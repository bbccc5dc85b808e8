"""The shared part of an exchange plugin's trading account (an :class:`arbotd.ExchangeAccount`).

:class:`VenueAccount` does what every venue's account does the same way: it holds the
venue's settings (a :class:`~arbotd.exchange.VenueConfig`), makes its REST client on first
use (with the keys the environment holds then) and drops it at :meth:`~VenueAccount.close`,
keeps the loaded trading rules, says which secrets are missing, compares equal to an
account built from the same settings (so a reload that leaves the venue's table alone
keeps the account, its rules, clock offset and connections), owns the
:class:`~arbotd.exchange.OrderTracker` its private order stream fills, and waits on that
stream for the outcome of an order whose answer was lost or not final
(:meth:`~VenueAccount.heard`).

A venue supplies its wire format, signing and error codes through these hooks:

* ``name`` (the venue's name) and ``stream_title`` (how its order stream is called in logs);
* :meth:`~VenueAccount.make_rest`: its signed REST client (an :class:`~arbotd.exchange.RestClient`);
* :meth:`~VenueAccount.make_order_stream`: its :class:`~arbotd.exchange.OrderStream`;
* :meth:`~VenueAccount.load_rules`: read its symbols' rules into ``self._rules``;
* :meth:`~VenueAccount.told`: an order as the stream's tracked outcome makes it final;
* ``place_order``, ``query_order``, ``cancel_order`` and ``balances``: the venue's own
  requests and codes, with :meth:`~VenueAccount.refused_by_rules` and
  :class:`RecentIds` (the client order ids sent lately, for a retried placement) to help;
* optionally :meth:`~VenueAccount.account_key` (the settings the account depends on,
  when a reload changing others should keep it), :attr:`~VenueAccount.keys_read_at_start`
  (the keys read once, when the account is built) and :meth:`~VenueAccount.credentials`
  (where the secrets are read from).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

import attrs
import httpx

from arbotd._model import Fill, Order, OrderStatus
from arbotd._secrets import secret_from_env
from arbotd.exchange.orderstream import OrderStream, OrderTracker, TrackedOrder
from arbotd.exchange.rest import RestClient
from arbotd.exchange.rules import SymbolRules
from arbotd.exchange.settings import VenueConfig

__all__ = ["RecentIds", "VenueAccount"]

log = logging.getLogger(__name__)

#: Client order ids an account remembers as sent (or acknowledged, or unanswered): far
#: more than are ever in flight at once.
REMEMBERED_ORDERS = 10_000

SettingsT = TypeVar("SettingsT", bound=VenueConfig)
RestT = TypeVar("RestT", bound=RestClient)
V = TypeVar("V")


class RecentIds(Generic[V]):
    """What an account remembers of the client order ids it sent lately (when, until
    when, the venue's order id), the oldest forgotten past ``capacity``."""

    def __init__(self, capacity: int = REMEMBERED_ORDERS) -> None:
        self.capacity = capacity
        self._values: collections.OrderedDict[str, V] = collections.OrderedDict()

    def remember(self, client_order_id: str, value: V) -> None:
        self._values[client_order_id] = value
        self._values.move_to_end(client_order_id)
        while len(self._values) > self.capacity:
            self._values.popitem(last=False)

    def get(self, client_order_id: str) -> V | None:
        return self._values.get(client_order_id)

    def forget(self, client_order_id: str) -> None:
        self._values.pop(client_order_id, None)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._values

    def __len__(self) -> int:
        return len(self._values)


class VenueAccount(Generic[SettingsT, RestT]):
    """Base of a venue's trading account; see the module's docstring for what a venue
    supplies. ``clock`` is the local time (for tests), ``transport`` the HTTP transport of
    the REST client (for tests), ``stream_wait`` how long an order's outcome is awaited
    on the private stream before REST is asked, ``stream_options`` extra arguments of the
    :class:`~arbotd.exchange.OrderStream` (heartbeat, backoff)."""

    #: The venue's name (``Order.exchange``, ``Fill.exchange``, logs).
    name: ClassVar[str] = ""
    #: How the venue's private order stream is called in log lines.
    stream_title: ClassVar[str] = "the private order stream"
    #: Whether the keys are read once, as the environment holds them when the account
    #: is built (an account a reload keeps goes on with the keys it started with), rather
    #: than each time :meth:`credentials` is asked.
    keys_read_at_start: ClassVar[bool] = False

    def __init__(
        self,
        settings: SettingsT,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        stream_wait: float = 1.0,
        stream_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._transport = transport
        self._rest: RestT | None = None
        self._rules: dict[str, SymbolRules] = {}
        self._keys_at_start = self._read_keys() if self.keys_read_at_start else None
        # What the private stream has told of the orders, and the stream (None when the
        # settings name none); the live executor runs it while the account is in use.
        self.orders = OrderTracker()
        self.stream_wait = stream_wait
        url = settings.resolved_order_stream_url()
        self.order_stream = (
            None if url is None else self.make_order_stream(url, **(stream_options or {})))

    # --- what a venue provides ------------------------------------------------------------

    def make_rest(self) -> RestT:
        """The venue's REST client, with the keys :meth:`credentials` gives now."""
        raise NotImplementedError

    def make_order_stream(self, url: str, **options: Any) -> OrderStream:
        """The venue's private order stream at ``url``, reporting to ``self.orders``
        (``options`` go to :class:`~arbotd.exchange.OrderStream`)."""
        raise NotImplementedError

    async def load_rules(self) -> Any:
        """Read the trading rules of the venue's symbols into ``self._rules``."""
        raise NotImplementedError

    def told(self, order: Order, tracked: TrackedOrder) -> tuple[Order, list[Fill]]:
        """``order`` made final as the private stream told it (``tracked`` is complete),
        with its fills."""
        raise NotImplementedError

    def account_key(self) -> Hashable:
        """What the account depends on: accounts with equal keys are interchangeable, so
        a reload keeps the running one. The whole settings table by default."""
        return self.settings

    def credentials(self) -> tuple[str | None, ...]:
        """The secrets, in the order of ``settings.credential_variables()``: read from
        the environment (or the secrets file) each time by default, or once at start
        (:attr:`keys_read_at_start`)."""
        if self._keys_at_start is not None:
            return self._keys_at_start
        return self._read_keys()

    def _read_keys(self) -> tuple[str | None, ...]:
        return tuple(secret_from_env(v) for v in self.settings.credential_variables())

    # --- shared ---------------------------------------------------------------------------

    def __repr__(self) -> str:  # never the keys
        return f"{type(self).__name__}({self.settings.resolved_rest_url()!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, VenueAccount)
        return self.account_key() == other.account_key()

    def __hash__(self) -> int:
        return hash((type(self), self.account_key()))

    def missing_credentials(self) -> list[str]:
        variables = self.settings.credential_variables()
        return [v for v, value in zip(variables, self.credentials(), strict=True) if not value]

    @property
    def rest(self) -> RestT:
        """The REST client, made on first use (an account never used holds no
        connection) and again after :meth:`close`."""
        if self._rest is None:
            self._rest = self.make_rest()
        return self._rest

    def timestamp_ms(self) -> int:
        """The venue's clock now (ms), as the REST client measured it: what signatures
        carry."""
        return self.rest.timestamp_ms()

    async def open(self) -> None:
        """Measure the clock offset and load the rules."""
        await self.rest.sync_time()
        await self.load_rules()

    async def close(self) -> None:
        if self._rest is not None:
            rest, self._rest = self._rest, None
            await rest.aclose()

    def rules(self, symbol: str) -> SymbolRules | None:
        return self._rules.get(symbol)

    def refused_by_rules(self, order: Order) -> tuple[Order, list[Fill]] | None:
        """``order`` rejected with the reason, when the loaded rules say the venue would
        refuse it (size, price step, notional); ``None`` when they allow it or none are
        loaded for its symbol."""
        rules = self._rules.get(order.symbol)
        if rules is None:
            return None
        market = order.price == 0
        problem = rules.problem(order.quantity, None if market else order.price, market=market)
        if problem is None:
            return None
        return attrs.evolve(order, status=OrderStatus.REJECTED, reason=problem), []

    async def heard(
        self, order: Order, session: int | None, stream_id: str | None = None
    ) -> tuple[Order, list[Fill]] | None:
        """The order's outcome as the private stream tells it, waiting up to
        ``stream_wait`` seconds; ``None`` when the stream cannot tell (it is down, it
        reconnected since ``session``, it stayed silent). ``stream_id`` is the order's id
        on the stream when the venue rewrites client order ids."""
        if session is None:
            return None
        tracked = await self.orders.wait(stream_id or order.client_order_id, session,
                                         self.stream_wait)
        if tracked is None:
            log.info("%s: order %s: %s did not tell its outcome; asking REST", self.name,
                     order.client_order_id, self.stream_title)
            return None
        return self.told(order, tracked)
