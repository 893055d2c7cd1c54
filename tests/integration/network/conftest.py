"""Namespace labs for the network tests: skipped without root, ``ip`` or ``nft``,
failed instead when ``OCS_TEST_REQUIRE_SERVICES`` is set (CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ocs.db.engine import make_engine, session_factory
from tests.dbfixtures import throwaway_database
from tests.framework.dataplane import missing_dataplane_tools
from tests.framework.netcloud import NetCloud
from tests.framework.netns import BridgeLab, missing_prerequisites
from tests.services import services_required


def require_namespaces() -> None:
    reason = missing_prerequisites()
    if reason is None:
        return
    if services_required():
        pytest.fail(reason + " and OCS_TEST_REQUIRE_SERVICES is set", pytrace=False)
    pytest.skip(reason)


def require_dataplane() -> None:
    """Namespaces, and the tools a data-plane lab runs (dnsmasq, nft, busybox)."""
    require_namespaces()
    reason = missing_dataplane_tools()
    if reason is not None:
        if services_required():
            pytest.fail(reason + " and OCS_TEST_REQUIRE_SERVICES is set", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    """A throwaway SQLite database of the data-plane labs' cloud."""
    with throwaway_database("sqlite") as url:
        engine = make_engine(url)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()


@pytest.fixture
def cloud(sessions: sessionmaker[Session]) -> NetCloud:
    return NetCloud(sessions)


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[BridgeLab]:
    """A host namespace with a bridge; dumps its ruleset when the test fails."""
    require_namespaces()
    with BridgeLab() as made:
        yield made
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(made.dump())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report
