"""One libvirt connection with its lifecycle events, shared by a driver's threads.

libvirt connections are thread-safe, so a driver keeps one and every thread
uses it. Events need libvirt's default event loop: it is registered once per
process (``virEventRegisterDefaultImpl``, before the first connection opens)
and run by a daemon thread (``virEventRunDefaultImpl`` in a loop). The
connection subscribes to lifecycle and reboot events of every domain
(``domainEventRegisterAny``) and hands them, as domain names, to the callbacks
it was given; they run on the event thread. A connection that drops (libvirtd
restarted) is noticed by its close callback and reopened on next use.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import libvirt

from ocs.compute_agent.driver import DriverError, GuestEvent, PowerState

LOG = logging.getLogger(__name__)

#: Called on the event thread with ``(domain name, event, detail)`` / ``(domain name)``.
LifecycleCallback = Callable[[str, int, int], None]
RebootCallback = Callable[[str], None]

_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None


def _run_event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:
            LOG.exception("libvirt event loop iteration failed")
            time.sleep(0.1)


def _quiet(context: Any, error: Any) -> None:
    LOG.debug("libvirt: %s", error[2] if isinstance(error, (list, tuple)) and len(error) > 2 else error)


def start_event_loop() -> None:
    """Register libvirt's default event loop and run it on a daemon thread (once)."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.registerErrorHandler(_quiet, None)  # errors raise; libvirt need not print them too
        libvirt.virEventRegisterDefaultImpl()
        _loop_thread = threading.Thread(target=_run_event_loop, name="libvirt-events", daemon=True)
        _loop_thread.start()


# --- what libvirt's states and events mean to OCS ------------------------------------------------


def power_state(state: int, reason: int) -> PowerState:
    """A guest's :class:`PowerState` from ``virDomainGetState``'s state and reason."""
    if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_SHUTDOWN):
        return PowerState.RUNNING  # SHUTDOWN: still running, on its way down
    if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
        return PowerState.PAUSED
    if state == libvirt.VIR_DOMAIN_SHUTOFF:
        crashed = reason in (libvirt.VIR_DOMAIN_SHUTOFF_CRASHED, libvirt.VIR_DOMAIN_SHUTOFF_FAILED)
        return PowerState.CRASHED if crashed else PowerState.SHUTDOWN
    if state == libvirt.VIR_DOMAIN_CRASHED:
        return PowerState.CRASHED
    return PowerState.NOSTATE


def guest_event(event: int, detail: int) -> GuestEvent | None:
    """The :class:`GuestEvent` of a libvirt lifecycle event (None: not one OCS reports).

    ``SHUTDOWN`` is not reported: it means the guest *began* to shut down (the
    domain is still running) and, during an ACPI reboot, is followed by a reset
    rather than a stop; the ``STOPPED`` that follows a real power-off is reported.
    """
    if event == libvirt.VIR_DOMAIN_EVENT_STARTED:
        return GuestEvent.STARTED
    if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
        return GuestEvent.CRASHED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        crashed = detail in (
            libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED,
            libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED,
        )
        return GuestEvent.CRASHED if crashed else GuestEvent.STOPPED
    return None


# --- the connection -----------------------------------------------------------------------------------


class Connection:
    """A libvirt connection to ``uri`` that delivers domain events to callbacks."""

    def __init__(self, uri: str, on_lifecycle: LifecycleCallback, on_reboot: RebootCallback) -> None:
        self.uri = uri
        self._on_lifecycle = on_lifecycle
        self._on_reboot = on_reboot
        self._lock = threading.Lock()
        self._conn: Any = None
        self._callbacks: list[int] = []
        self._closed = True

    def open(self) -> None:
        """Connect (starting the event loop first). Raises :class:`DriverError`."""
        start_event_loop()
        with self._lock:
            self._closed = False
            self._connect()

    def get(self) -> Any:
        """The ``virConnect``, reopened if it dropped. Raises :class:`DriverError` once closed."""
        with self._lock:
            if self._closed:
                raise DriverError(f"libvirt connection to {self.uri} is closed (call init_host)")
            if self._conn is None or not self._alive():
                self._connect()
            return self._conn

    def close(self) -> None:
        """Unsubscribe and disconnect; idempotent, never raises."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            callbacks, self._callbacks = self._callbacks, []
        if conn is None:
            return
        for callback_id in callbacks:
            try:
                conn.domainEventDeregisterAny(callback_id)
            except libvirt.libvirtError:
                pass
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        try:
            conn.close()
        except libvirt.libvirtError:
            LOG.debug("closing %s failed", self.uri, exc_info=True)

    # --- helpers (callers hold the lock) -------------------------------------------------------

    def _alive(self) -> bool:
        try:
            return bool(self._conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _connect(self) -> None:
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc}") from exc
        try:
            self._callbacks = [
                conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None
                ),
                conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._reboot, None),
            ]
            conn.registerCloseCallback(self._dropped, None)
            if not self.uri.startswith("test:"):
                conn.setKeepAlive(5, 3)
        except libvirt.libvirtError as exc:
            conn.close()
            raise DriverError(f"cannot subscribe to libvirt events at {self.uri}: {exc}") from exc
        self._conn = conn

    def _dropped(self, conn: Any, reason: int, opaque: Any) -> None:
        LOG.warning("libvirt connection to %s dropped (reason %s); it reopens on next use", self.uri, reason)
        with self._lock:
            if self._conn is conn:
                self._conn = None
                self._callbacks = []

    def _lifecycle(self, conn: Any, dom: Any, event: int, detail: int, opaque: Any) -> None:
        try:
            self._on_lifecycle(dom.name(), event, detail)
        except Exception:
            LOG.exception("handling libvirt event %s/%s failed", event, detail)

    def _reboot(self, conn: Any, dom: Any, opaque: Any) -> None:
        try:
            self._on_reboot(dom.name())
        except Exception:
            LOG.exception("handling a libvirt reboot event failed")
