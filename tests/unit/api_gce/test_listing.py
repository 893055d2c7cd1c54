"""Compute Engine list semantics: filter expressions, orderBy, maxResults, pageToken, aggregatedList."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocs.api_gce import listing
from ocs.api_gce.listing import ListError, aggregate, compile_filter, list_page

WEB1 = {
    "name": "web-1",
    "id": "1234567890123456789",
    "status": "RUNNING",
    "creationTimestamp": "2024-01-01T10:00:00.000-08:00",
    "cpuPlatform": "Intel Skylake",
    "labels": {"env": "prod", "owner": "ann"},
    "scheduling": {"automaticRestart": True, "preemptible": False},
    "tags": {"items": ["http", "ssh"]},
    "networkInterfaces": [
        {"networkIP": "10.0.0.2", "accessConfigs": [{"natIP": "34.1.1.1"}]},
        {"networkIP": "10.1.0.2"},
    ],
    "disks": [{"diskSizeGb": "10", "boot": True}],
}
WEB2 = {
    "name": "web-2",
    "id": "1234567890123456788",
    "status": "TERMINATED",
    "creationTimestamp": "2024-01-02T10:00:00.000-08:00",
    "cpuPlatform": "Intel Broadwell",
    "labels": {"env": "dev"},
    "scheduling": {"automaticRestart": False},
    "networkInterfaces": [{"networkIP": "10.0.0.3"}],
    "disks": [{"diskSizeGb": "200", "boot": True}],
}
DB = {
    "name": "db",
    "id": "7",
    "status": "RUNNING",
    "creationTimestamp": "2023-12-31T00:00:00.000Z",
    "cpuPlatform": "AMD Rome",
    "scheduling": {"automaticRestart": True},
    "networkInterfaces": [{"networkIP": "192.168.0.9"}],
    "disks": [{"diskSizeGb": "50"}],
}
ALL = [WEB1, WEB2, DB]


def names(expr: str | None) -> list[str]:
    pred = compile_filter(expr)
    return sorted(item["name"] for item in ALL if pred(item))


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (None, ["db", "web-1", "web-2"]),
        ("", ["db", "web-1", "web-2"]),
        ("   ", ["db", "web-1", "web-2"]),
        ("name = web-1", ["web-1"]),
        ("name=web-1", ["web-1"]),
        ('name = "web-1"', ["web-1"]),
        ("name = 'web-1'", ["web-1"]),
        ("name != web-1", ["db", "web-2"]),
        ("name != example-instance", ["db", "web-1", "web-2"]),
        ("status = RUNNING", ["db", "web-1"]),
        ('cpuPlatform = "Intel Skylake"', ["web-1"]),
        ("name > db", ["web-1", "web-2"]),
        ("name >= web-1", ["web-1", "web-2"]),
        ("name < web-1", ["db"]),
        ("name <= web-1", ["db", "web-1"]),
        ('creationTimestamp > "2024-01-01"', ["web-1", "web-2"]),
        ("id = 7", ["db"]),
        ("id > 100", ["web-1", "web-2"]),
        ("id = 1234567890123456789", ["web-1"]),  # exact, not via float
        ("id < 1234567890123456789", ["db", "web-2"]),
        ("disks.diskSizeGb > 20", ["db", "web-2"]),
        ("disks.diskSizeGb >= 1e1", ["db", "web-1", "web-2"]),
        ("disks.diskSizeGb = 10.0", ["web-1"]),
    ],
)
def test_comparisons(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("scheduling.automaticRestart = true", ["db", "web-1"]),
        ("scheduling.automaticRestart = false", ["web-2"]),
        ("scheduling.automaticRestart = TRUE", ["db", "web-1"]),
        ("scheduling.automaticRestart != true", ["web-2"]),
        ("scheduling.preemptible = false", ["web-1"]),
        ("disks.boot = true", ["web-1", "web-2"]),
    ],
)
def test_booleans(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("labels.env = prod", ["web-1"]),
        ("labels.env != prod", ["db", "web-2"]),  # an unset label is != anything
        ("labels.owner:*", ["web-1"]),
        ("labels:owner", ["web-1"]),
        ("labels:env", ["web-1", "web-2"]),
        ("labels:*", ["web-1", "web-2"]),
        ("labels.env:*", ["web-1", "web-2"]),
        ("scheduling.automaticRestart:*", ["db", "web-1", "web-2"]),
        ("scheduling.preemptible:*", ["web-1"]),
        ("name:web-*", ["web-1", "web-2"]),
        ("name:web", []),
        ("labels.missing = x", []),
        ("nosuchfield = x", []),
        ("nosuchfield != x", ["db", "web-1", "web-2"]),
        ("nosuchfield > 1", []),
    ],
)
def test_nested_maps_and_presence(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("networkInterfaces.networkIP = 10.1.0.2", ["web-1"]),  # the second element
        ("networkInterfaces.networkIP = 10.0.0.*", ["web-1", "web-2"]),
        ("networkInterfaces.networkIP != 10.1.0.2", ["db", "web-2"]),
        ("networkInterfaces.accessConfigs.natIP:*", ["web-1"]),
        ("networkInterfaces.accessConfigs.natIP = 34.1.1.1", ["web-1"]),
        ("tags.items = ssh", ["web-1"]),
        ("tags.items:http", ["web-1"]),
        ("tags.items:*", ["web-1"]),
        ("networkInterfaces.networkIP > 11", ["db"]),
    ],
)
def test_repeated_fields_match_if_any_element_matches(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('name = "web-*"', ["web-1", "web-2"]),
        ("name = web-*", ["web-1", "web-2"]),
        ("name = *-2", ["web-2"]),
        ("name = *", ["db", "web-1", "web-2"]),
        ("name = w*1", ["web-1"]),
        ("name != web-*", ["db"]),
        ('cpuPlatform = "Intel *"', ["web-1", "web-2"]),
        ("name = web.1", []),  # a dot is no wildcard
    ],
)
def test_wildcards(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("(status = RUNNING) (labels.env = prod)", ["web-1"]),
        ("(status = RUNNING)(labels.env = prod)", ["web-1"]),
        ("(status = RUNNING)\n(scheduling.automaticRestart = true)", ["db", "web-1"]),
        ("status = RUNNING labels.env = prod", ["web-1"]),
        ("status = RUNNING AND labels.env = prod", ["web-1"]),
        ("name = db OR name = web-2", ["db", "web-2"]),
        ("(name = db) OR (name = web-2)", ["db", "web-2"]),
        # The discovery doc's example: OR binds tighter than AND (AIP-160).
        (
            '(cpuPlatform = "Intel Skylake") OR (cpuPlatform = "Intel Broadwell") AND (scheduling.automaticRestart = true)',
            ["web-1"],
        ),
        ("name = db OR name = web-2 AND status = RUNNING", ["db"]),
        ("status = RUNNING AND name = db OR name = web-1", ["db", "web-1"]),
        ("name = db (name = web-1 OR name = web-2)", []),
        ("(name = db OR name = web-1) status = RUNNING", ["db", "web-1"]),
        ("NOT name = db", ["web-1", "web-2"]),
        ("NOT (name = db OR name = web-1)", ["web-2"]),
        ("-name = db", ["web-1", "web-2"]),
        ("-(name = db)", ["web-1", "web-2"]),
        ("-labels.owner:*", ["db", "web-2"]),
        ("((name = db))", ["db"]),
        ("( name = db )", ["db"]),
        ("(name = db) AND NOT (status = TERMINATED)", ["db"]),
    ],
)
def test_boolean_structure_and_precedence(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('cpuPlatform = "Intel Skylake"', ["web-1"]),
        ("cpuPlatform = 'Intel Skylake'", ["web-1"]),
        ('name = "web-1" ', ["web-1"]),
        ('name = "web\\-1"', ["web-1"]),
        ('cpuPlatform = "AMD (Rome)"', []),
        ('name = "(db)"', []),
        ('name = "a \\" quote"', []),
        ("name = 'it''s'", None),  # two quoted strings glued: malformed
        ('name = "true"', []),
        ('scheduling.automaticRestart = "true"', ["db", "web-1"]),  # text of a boolean
        ("name = AND", []),  # a bare keyword in value position is text
    ],
)
def test_quoting(expr, expected):
    if expected is None:
        with pytest.raises(ListError):
            compile_filter(expr)
    else:
        assert names(expr) == expected


# --------------------------------------------------------------------------- regex form


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("name eq web-.*", ["web-1", "web-2"]),
        ("name eq 'web-.*'", ["web-1", "web-2"]),
        ('name eq "web-.*"', ["web-1", "web-2"]),
        ("name eq web", []),  # the whole value must match
        ("name eq web-1|db", ["db", "web-1"]),
        ("name ne .*1", ["db", "web-2"]),
        ("status eq RUNNING", ["db", "web-1"]),
        ("cpuPlatform eq 'Intel Sky.*'", ["web-1"]),
        ('cpuPlatform eq "(Intel|AMD) R.*"', ["db"]),
        ("cpuPlatform eq (Intel|AMD).R.*", ["db"]),
        ("(name eq web-.*) (status ne RUNNING)", ["web-2"]),
        ("(name eq web-.*)(status eq RUNNING)", ["web-1"]),
        ("(cpuPlatform eq '(Intel|AMD) R.*')", ["db"]),
        ("(cpuPlatform eq (Intel|AMD).R.*)", ["db"]),
        ('(name eq "web-(1|2)")', ["web-1", "web-2"]),
        ("networkInterfaces.networkIP eq 10\\.1\\..*", ["web-1"]),
        ("scheduling.automaticRestart eq true", ["db", "web-1"]),
        ("labels.env eq p.*", ["web-1"]),
        ("labels.env ne p.*", ["db", "web-2"]),
        ("id eq 7", ["db"]),
        # What gcloud sends for --filter terms it can hand to the server.
        ('(name eq ".*\\bweb.*")', ["web-1", "web-2"]),
        ('(status ne "TERMINATED") (name eq "web-.*")', ["web-1"]),
        ("(labels.env eq 'prod')", ["web-1"]),
        ('(cpuPlatform eq "Intel \\"Sky\\".*")', []),
    ],
)
def test_regex_form(expr, expected):
    assert names(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "status eq RUNNING AND name eq web-1",  # googleapis/nodejs-compute#48
        "(status eq RUNNING) AND (name eq web-1)",
        "(status eq RUNNING) OR (name eq web-1)",
        "(name eq web-.*) (status = RUNNING)",  # mixing the two forms
        "(status = RUNNING) (name eq web-.*)",
        "status = RUNNING name eq web",
        "NOT name eq web",
        "-name eq web",
        "name eq *collector*",  # prometheus/prometheus#5499: not an RE2 pattern
        "name eq (?=x)",  # RE2 has no lookahead
        "name eq \\1",
        "name eq",
        "cpuPlatform eq Intel Sky.*",  # an unquoted literal is one word
        "(cpuPlatform eq Intel Sky.*)",
        "(name eq)",
        "(name eq web",
        "name eq 'web",
        "name eq 'a'b'",
    ],
)
def test_regex_form_errors(expr):
    with pytest.raises(ListError) as err:
        compile_filter(expr)
    assert str(err.value) == f"Invalid value for field 'filter': '{expr}'. Invalid list filter expression."


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "expr",
    [
        "name",  # global search: not in Compute Engine
        "web-1",
        "name =",
        "= web-1",
        "name == web-1",
        "name ~ web",
        "(name = db",
        "name = db)",
        "()",
        "name = db AND",
        "AND name = db",
        "name = db OR",
        'name = "unterminated',
        "name = 'unterminated",
        'name = "x\\',
        "items[0].name = x",
        "networkInterfaces[].network = x",
        "tags = (web)",
        "name = db (",
        "labels..env = x",
        ".name = x",
        "NOT",
        "NOT NOT name = db",  # AIP-160: one negation a term
        "-",
        "name = db -",
        "(" * 200 + "name = db" + ")" * 200,
        "x" * 5000 + " = 1",
        "name = a\x00",
    ],
)
def test_malformed_filters(expr):
    with pytest.raises(ListError) as err:
        compile_filter(expr)
    assert "Invalid list filter expression." in str(err.value)
    assert err.value.field == "filter"


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(
                [
                    "name",
                    "labels.env",
                    " ",
                    "=",
                    "!=",
                    ">",
                    "<=",
                    ":",
                    "*",
                    "(",
                    ")",
                    "AND",
                    "OR",
                    "NOT",
                    "-",
                    "eq",
                    "ne",
                    '"',
                    "'",
                    "\\",
                    "web-1",
                    "true",
                    "7",
                    ".*",
                    "|",
                    "[",
                    ".",
                ]
            ),
            max_size=14,
        ).map("".join),
    )
)
def test_any_string_compiles_or_raises_list_error(expr):
    try:
        pred = compile_filter(expr)
    except ListError as err:
        assert str(err).startswith("Invalid value for field 'filter'")
        return
    for item in ALL + [{}, {"name": None}, {"labels": []}]:
        assert isinstance(pred(item), bool)


# --------------------------------------------------------------------------- orderBy, maxResults


def _items(n: int) -> list[dict]:
    return [
        {"name": f"vm-{i:03d}", "creationTimestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}.000-08:00"}
        for i in range(n)
    ]


def test_default_order_is_by_name():
    page, token = list_page(ALL)
    assert [i["name"] for i in page] == ["db", "web-1", "web-2"] and token is None


@pytest.mark.parametrize("order", ["name", "name asc", "  name  "])
def test_order_by_name(order):
    page, _ = list_page(ALL, order_by=order)
    assert [i["name"] for i in page] == ["db", "web-1", "web-2"]


def test_order_by_creation_timestamp_desc_compares_instants_not_text():
    items = [
        {"name": "a", "creationTimestamp": "2024-01-01T10:00:00.000-08:00"},  # 18:00Z
        {"name": "b", "creationTimestamp": "2024-01-01T17:00:00.000Z"},
        {"name": "c", "creationTimestamp": "2024-01-01T19:00:00+00:00"},
        {"name": "d"},  # no timestamp: last
        {"name": "e", "creationTimestamp": "2024-01-01T17:00:00.000Z"},  # tie: by name
    ]
    page, _ = list_page(items, order_by="creationTimestamp desc")
    assert [i["name"] for i in page] == ["c", "a", "b", "e", "d"]


@pytest.mark.parametrize(
    "order",
    ["creationTimestamp", "creationTimestamp asc", "name desc", "status", "zone", "name,status", "desc"],
)
def test_unsupported_order_by(order):
    with pytest.raises(ListError) as err:
        list_page(ALL, order_by=order)
    assert str(err.value).startswith(f"Invalid value for field 'orderBy': '{order}'.")
    assert err.value.field == "orderBy"


def test_filter_with_order_by_is_refused_as_compute_engine_does():
    with pytest.raises(ListError) as err:
        list_page(ALL, filter="name = db", order_by="creationTimestamp desc")
    assert str(err.value) == (
        "Invalid value for field 'orderBy': 'creationTimestamp desc'. "
        "Specifying both a list filter and sort order is not currently supported."
    )
    page, _ = list_page(ALL, filter="name = db", order_by="name", allow_filter_with_order=True)
    assert [i["name"] for i in page] == ["db"]


@pytest.mark.parametrize(
    ("given", "size"), [(None, 500), ("", 500), (0, 500), ("0", 500), (1, 1), ("500", 500), (7, 7)]
)
def test_max_results(given, size):
    assert listing.parse_max_results(given) == size


@pytest.mark.parametrize("given", [501, "501", "1000"])
def test_max_results_too_large(given):
    with pytest.raises(ListError) as err:
        list_page(ALL, max_results=given)
    assert (
        str(err.value)
        == f"Invalid value for field 'maxResults': '{int(given)}'. Must be less than or equal to 500"
    )


@pytest.mark.parametrize("given", [-1, "-1", "abc", "1.5", True, "99999999999", " "])
def test_max_results_not_uint32(given):
    with pytest.raises(ListError) as err:
        list_page(ALL, max_results=given)
    assert err.value.field == "maxResults"


def test_page_size_one_walks_everything():
    seen, token, pages = [], None, 0
    while True:
        page, token = list_page(ALL, max_results=1, page_token=token)
        seen += [i["name"] for i in page]
        pages += 1
        if token is None:
            break
    assert seen == ["db", "web-1", "web-2"] and pages == 3


def test_exact_fit_has_no_token():
    page, token = list_page(_items(5), max_results=5)
    assert len(page) == 5 and token is None
    page, token = list_page(_items(6), max_results=5)
    assert len(page) == 5 and token is not None


def test_default_page_is_500():
    page, token = list_page(_items(501))
    assert len(page) == 500 and token is not None
    page, token = list_page(_items(501), page_token=token)
    assert [i["name"] for i in page] == ["vm-500"] and token is None


def test_filter_applies_before_paging():
    items = _items(30)
    page, token = list_page(items, filter="name = vm-01*", max_results=4)
    assert [i["name"] for i in page] == ["vm-010", "vm-011", "vm-012", "vm-013"]
    page, token = list_page(items, filter="name = vm-01*", max_results=100, page_token=token)
    assert [i["name"] for i in page] == [f"vm-01{i}" for i in range(4, 10)] and token is None


# --------------------------------------------------------------------------- page tokens


@pytest.mark.parametrize("token", ["garbage", "!!!", "e30", "AAAA", "x" * 300, "é"])
def test_garbage_tokens_are_refused(token):
    with pytest.raises(ListError) as err:
        list_page(ALL, page_token=token)
    assert str(err.value).startswith(f"Invalid value for field 'pageToken': '{token}'.")
    assert err.value.field == "pageToken"


def test_empty_token_is_no_token():
    assert list_page(ALL, page_token="")[0] == list_page(ALL)[0]


def test_tampered_token_is_refused():
    _, token = list_page(_items(10), max_results=3)
    import base64

    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    forged = base64.urlsafe_b64encode(raw.replace("vm-002", "vm-007").encode()).decode().rstrip("=")
    with pytest.raises(ListError):
        list_page(_items(10), max_results=3, page_token=forged)
    for i in range(len(token)):  # any one changed character
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(ListError):
            list_page(_items(10), max_results=3, page_token=changed)


def test_token_belongs_to_its_order_filter_and_scope():
    items = _items(10)
    _, token = list_page(items, max_results=3, scope="p/zones/a/instances")
    assert list_page(items, max_results=3, page_token=token, scope="p/zones/a/instances")[0]
    with pytest.raises(ListError):
        list_page(items, max_results=3, page_token=token, scope="p/zones/b/instances")
    with pytest.raises(ListError):
        list_page(
            items,
            max_results=3,
            page_token=token,
            order_by="creationTimestamp desc",
            scope="p/zones/a/instances",
        )
    with pytest.raises(ListError):
        list_page(items, max_results=3, page_token=token, filter="name = x", scope="p/zones/a/instances")
    # The page size may change between pages.
    page, _ = list_page(items, max_results=5, page_token=token, scope="p/zones/a/instances")
    assert [i["name"] for i in page] == [f"vm-00{i}" for i in range(3, 8)]


def test_items_added_and_removed_between_pages():
    items = _items(10)
    page1, token = list_page(items, max_results=4)
    # An item behind the cursor, one ahead of it, and one removed ahead.
    later = [i for i in items if i["name"] != "vm-006"] + [{"name": "vm-000a"}, {"name": "vm-008a"}]
    rest, token = list_page(later, max_results=100, page_token=token)
    seen = [i["name"] for i in page1 + rest]
    assert seen == [
        "vm-000",
        "vm-001",
        "vm-002",
        "vm-003",
        "vm-004",
        "vm-005",
        "vm-007",
        "vm-008",
        "vm-008a",
        "vm-009",
    ]
    assert token is None


def test_cursor_item_removed_still_resumes():
    items = _items(6)
    page, token = list_page(items, max_results=3)
    rest, _ = list_page(items[:2] + items[3:], page_token=token)
    assert [i["name"] for i in rest] == ["vm-003", "vm-004", "vm-005"]


@settings(max_examples=150, deadline=None)
@given(
    names_=st.lists(st.text(alphabet="abcz-09", min_size=1, max_size=4), unique=True, max_size=40),
    stamps=st.lists(st.integers(0, 5), min_size=40, max_size=40),
    size=st.integers(1, 7),
    by_time=st.booleans(),
    additions=st.lists(st.text(alphabet="abcz-09", min_size=1, max_size=4), unique=True, max_size=10),
)
def test_paging_returns_every_item_once_and_terminates(names_, stamps, size, by_time, additions):
    items = [
        {"name": n, "creationTimestamp": f"2024-01-01T00:00:0{s}Z"}
        for n, s in zip(names_, stamps, strict=False)
    ]
    order = "creationTimestamp desc" if by_time else None
    expected, _ = list_page(items, order_by=order)
    seen: list[str] = []
    token = None
    current = list(items)
    pending = [a for a in additions if a not in names_]
    for _ in range(len(items) + len(pending) + 2):
        page, token = list_page(current, order_by=order, max_results=size, page_token=token)
        assert len(page) <= size
        seen += [i["name"] for i in page]
        if token is None:
            break
        if pending:  # items appear between pages
            current.append({"name": pending.pop(), "creationTimestamp": "2024-01-01T00:00:03Z"})
    else:
        pytest.fail("paging did not terminate")
    assert len(seen) == len(set(seen))  # nothing twice
    assert {i["name"] for i in expected} <= set(seen)  # everything that was there throughout
    assert set(seen) <= {i["name"] for i in current}


# --------------------------------------------------------------------------- aggregatedList


def _scopes():
    return {
        "zones/us-b": [{"name": "b1"}, {"name": "a1"}],
        "zones/us-a": [{"name": "x"}, {"name": "a1"}],  # names repeat across scopes
        "zones/us-c": [],
    }


def test_aggregate_one_page():
    body = aggregate(_scopes(), "instances")
    assert body == {
        "items": {
            "zones/us-a": {"instances": [{"name": "a1"}, {"name": "x"}]},
            "zones/us-b": {"instances": [{"name": "a1"}, {"name": "b1"}]},
            "zones/us-c": {
                "warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": "There are no results for scope 'zones/us-c' on this page.",
                    "data": [{"key": "scope", "value": "zones/us-c"}],
                }
            },
        }
    }


def test_aggregate_pages_across_scopes_and_filters():
    seen, token = [], None
    while True:
        body = aggregate(_scopes(), "disks", max_results=1, page_token=token, filter="name != x")
        assert set(body["items"]) == {"zones/us-a", "zones/us-b", "zones/us-c"}  # every scope, every page
        for scope, scoped in body["items"].items():
            seen += [(scope, i["name"]) for i in scoped.get("disks", [])]
            if "disks" not in scoped:
                assert scoped["warning"]["code"] == "NO_RESULTS_ON_PAGE"
        token = body.get("nextPageToken")
        if token is None:
            break
    assert seen == [("zones/us-a", "a1"), ("zones/us-b", "a1"), ("zones/us-b", "b1")]


def test_aggregate_partial_success():
    body = aggregate(_scopes(), "instances", return_partial_success="true", unreachable=["zones/us-z"])
    assert body["unreachables"] == ["zones/us-z"]
    assert "unreachables" not in aggregate(_scopes(), "instances", return_partial_success=False)
    with pytest.raises(ListError):
        aggregate(_scopes(), "instances", return_partial_success="maybe")


def test_aggregate_errors_like_list():
    with pytest.raises(ListError):
        aggregate(_scopes(), "instances", filter="name eq")
    with pytest.raises(ListError):
        aggregate(_scopes(), "instances", max_results=501)
    with pytest.raises(ListError):
        aggregate(_scopes(), "instances", page_token="nope")
    _, token = list_page([{"name": "a"}, {"name": "b"}], max_results=1)
    with pytest.raises(ListError):  # a list token is no aggregated-list token when scopes differ
        aggregate(_scopes(), "instances", page_token=token, scope="agg")


# --------------------------------------------------------------------------- structure against a model
#
# Random expression trees are rendered as filter text (with random spacing, quoting,
# AND spelled out or by juxtaposition, NOT or "-", and only the parentheses that
# precedence needs, or more) and must select what the tree selects.

_FIELDS = [
    "name",
    "status",
    "labels.env",
    "id",
    "scheduling.automaticRestart",
    "networkInterfaces.networkIP",
    "tags.items",
]
_VALUES = [
    "web-1",
    "RUNNING",
    "prod",
    "7",
    "true",
    "false",
    "10.0.0.*",
    "Intel Skylake",
    'a"b',
    "it's",
    "(x)",
    "web-*",
    "*",
]
_OPS = ["=", "!=", ">", "<", ">=", "<=", ":"]


def _quote(value: str, style: str) -> str:
    if style == "bare" and value and all(c not in value for c in " ()\"'"):
        return value
    quote = "'" if style == "single" else '"'
    return quote + value.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


_restrictions = st.builds(
    lambda f, op, v, style, sp: ("r", f"{f}{sp}{op}{sp}{_quote(v, style)}"),
    st.sampled_from(_FIELDS),
    st.sampled_from(_OPS),
    st.sampled_from(_VALUES),
    st.sampled_from(["bare", "single", "double"]),
    st.sampled_from(["", " ", "  "]),
)
_trees = st.recursive(
    _restrictions,
    lambda kids: st.one_of(
        st.tuples(st.just("not"), kids, st.sampled_from(["NOT ", "-"])),
        st.tuples(
            st.just("and"), st.lists(kids, min_size=2, max_size=3), st.sampled_from([" AND ", " ", "\n"])
        ),
        st.tuples(st.just("or"), st.lists(kids, min_size=2, max_size=3), st.just(" OR ")),
    ),
    max_leaves=8,
)


def _model(tree, item) -> bool:
    kind = tree[0]
    if kind == "r":
        return compile_filter(tree[1])(item)
    if kind == "not":
        return not _model(tree[1], item)
    if kind == "and":
        return all(_model(t, item) for t in tree[1])
    return any(_model(t, item) for t in tree[1])


def _render(tree, extra_parens) -> str:
    kind = tree[0]
    if kind == "r":
        return f"({tree[1]})" if extra_parens() else tree[1]
    if kind == "not":
        inner = _render(tree[1], extra_parens)
        if tree[1][0] != "r":
            inner = f"({inner})"
        return tree[2] + inner
    parts = []
    for child in tree[1]:
        text = _render(child, extra_parens)
        # OR binds tighter than AND: an AND inside an OR needs parentheses, an OR inside an AND does not.
        if (kind == "or" and child[0] == "and") or (
            kind == "and" and tree[2] != " AND " and child[0] == "or" and extra_parens()
        ):
            text = f"({text})"
        parts.append(text)
    return tree[2].join(parts)


@settings(max_examples=300, deadline=None)
@given(_trees, st.randoms(use_true_random=False))
def test_filter_structure_matches_the_model(tree, rnd):
    expr = _render(tree, lambda: rnd.random() < 0.3)
    pred = compile_filter(expr)
    for item in ALL + [
        {},
        {"name": 'a"b', "labels": {"env": "it's"}},
        {"name": "(x)", "status": "Intel Skylake"},
    ]:
        assert pred(item) == _model(tree, item), expr
