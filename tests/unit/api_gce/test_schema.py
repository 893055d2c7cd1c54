"""Discovery-driven JSON shaping and request-body checking over the real compute.v1 schemas."""

from __future__ import annotations

import json
import time
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocs.api_gce import schema
from ocs.api_gce.schema import BodyError, Schema, parse_body, shape

SAMPLE_INSTANCE = {
    "id": 8734567890123456789,  # an int on the server side: rendered as a string
    "name": "web-1",
    "description": "front end",
    "zone": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-a",
    "machineType": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-a/machineTypes/e2-small",
    "status": "RUNNING",
    "statusMessage": None,  # omitted
    "creationTimestamp": "2024-01-01T10:00:00.000-08:00",
    "canIpForward": False,
    "deletionProtection": False,
    "cpuPlatform": "Intel Broadwell",
    "labels": {"env": "prod", "team": "web"},
    "labelFingerprint": "42WmSpB8rSM=",
    "tags": {"items": ["http", "ssh"], "fingerprint": "FYLDgkTKlA4="},
    "metadata": {
        "kind": "compute#metadata",
        "fingerprint": "xyz_-0A=",
        "items": [{"key": "startup-script", "value": "#!/bin/sh"}],
    },
    "scheduling": {"automaticRestart": True, "onHostMaintenance": "MIGRATE", "preemptible": False},
    "disks": [
        {
            "boot": True,
            "autoDelete": True,
            "deviceName": "persistent-disk-0",
            "index": 0,
            "diskSizeGb": 10,
            "interface": "SCSI",
            "mode": "READ_WRITE",
            "source": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-a/disks/web-1",
            "type": "PERSISTENT",
            "licenses": [
                "https://compute.googleapis.com/compute/v1/projects/debian-cloud/global/licenses/debian-12"
            ],
        }
    ],
    "networkInterfaces": [
        {
            "name": "nic0",
            "network": "https://compute.googleapis.com/compute/v1/projects/p/global/networks/default",
            "networkIP": "10.128.0.2",
            "accessConfigs": [{"name": "External NAT", "natIP": "34.1.2.3", "type": "ONE_TO_ONE_NAT"}],
            "ocsInternalPort": "tap0",  # not in the schema: dropped
        }
    ],
    "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
    "selfLink": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-a/instances/web-1",
    "ocs_host": "compute-3",  # not in the schema: dropped
}


@pytest.fixture(scope="module")
def compute():
    return Schema.load()


# --------------------------------------------------------------------------- loading


def test_load_is_cached_and_keeps_only_schemas(compute):
    assert Schema.load() is compute
    assert "Instance" in compute and "Operation" in compute and "InstanceList" in compute
    assert "resources" not in compute.schemas and "NoSuchThing" not in compute
    with pytest.raises(KeyError):
        shape("NoSuchThing", {})


def test_load_is_fast_enough():
    document = resources.files(schema.DISCOVERY_PACKAGE).joinpath(schema.DISCOVERY_RESOURCE).read_bytes()
    start = time.perf_counter()
    Schema.from_bytes(document)

    assert time.perf_counter() - start < 5  # about 0.2 s on an idle core


# --------------------------------------------------------------------------- shape


def test_shape_instance(compute):
    shaped = shape("Instance", SAMPLE_INSTANCE)
    assert next(iter(shaped)) == "kind" and shaped["kind"] == "compute#instance"
    assert shaped["id"] == "8734567890123456789"
    assert "statusMessage" not in shaped and "ocs_host" not in shaped
    assert shaped["labels"] == {"env": "prod", "team": "web"}
    assert shaped["canIpForward"] is False and shaped["scheduling"]["automaticRestart"] is True
    disk = shaped["disks"][0]
    assert disk["kind"] == "compute#attachedDisk" and disk["diskSizeGb"] == "10" and disk["index"] == 0
    nic = shaped["networkInterfaces"][0]
    assert "ocsInternalPort" not in nic and nic["kind"] == "compute#networkInterface"
    assert nic["accessConfigs"][0] == {
        "kind": "compute#accessConfig",
        "name": "External NAT",
        "natIP": "34.1.2.3",
        "type": "ONE_TO_ONE_NAT",
    }
    assert shaped["metadata"]["kind"] == "compute#metadata"
    json.dumps(shaped)  # plain JSON


def test_shaped_instance_is_what_google_cloud_compute_parses():
    from google.cloud import compute_v1  # the test extra installs it: no skipping

    shaped = shape("Instance", SAMPLE_INSTANCE)
    parsed = compute_v1.Instance.from_json(json.dumps(shaped), ignore_unknown_fields=False)
    assert parsed.id == 8734567890123456789
    assert parsed.labels["env"] == "prod"
    assert parsed.disks[0].disk_size_gb == 10
    assert parsed.network_interfaces[0].access_configs[0].nat_i_p == "34.1.2.3"
    assert parsed.scheduling.automatic_restart is True
    # and back: the client's JSON of it is the shape again (less the empty lists proto adds)
    again = json.loads(compute_v1.Instance.to_json(parsed))
    assert shape("Instance", again)["labels"] == shaped["labels"]
    assert again["id"] == shaped["id"]


@pytest.mark.parametrize(
    ("name", "data", "check"),
    [
        (
            "Operation",
            {
                "name": "operation-1",
                "id": 5,
                "status": "DONE",
                "progress": 100,
                "httpErrorStatusCode": 400,
                "targetId": "77",
                "error": {"errors": [{"code": "RESOURCE_NOT_FOUND", "message": "gone", "location": None}]},
                "warnings": [
                    {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": "m",
                        "data": [{"key": "scope", "value": "zones/a"}],
                    }
                ],
            },
            lambda s: (
                s["kind"] == "compute#operation"
                and s["id"] == "5"
                and s["progress"] == 100
                and s["error"] == {"errors": [{"code": "RESOURCE_NOT_FOUND", "message": "gone"}]}
                and s["warnings"][0]["data"] == [{"key": "scope", "value": "zones/a"}]
            ),
        ),
        (
            "Zone",
            {
                "name": "us-a",
                "id": 1,
                "status": "UP",
                "availableCpuPlatforms": ["Intel Broadwell"],
                "supportsPzs": False,
            },
            lambda s: (
                s["kind"] == "compute#zone"
                and s["status"] == "UP"
                and s["supportsPzs"] is False
                and s["id"] == "1"
            ),
        ),
        (
            "MachineType",
            {
                "name": "e2-small",
                "guestCpus": 2,
                "memoryMb": "2048",
                "maximumPersistentDisksSizeGb": 263168,
                "isSharedCpu": True,
            },
            lambda s: (
                s["guestCpus"] == 2
                and s["memoryMb"] == 2048
                and s["maximumPersistentDisksSizeGb"] == "263168"
            ),
        ),
        (
            "Disk",
            {
                "name": "d",
                "sizeGb": 10,
                "status": "READY",
                "labels": {},
                "users": ["u"],
                "physicalBlockSizeBytes": "4096",
            },
            lambda s: (
                s["kind"] == "compute#disk"
                and s["sizeGb"] == "10"
                and s["labels"] == {}
                and s["users"] == ["u"]
            ),
        ),
        (
            "Firewall",
            {
                "name": "allow-ssh",
                "direction": "INGRESS",
                "priority": 1000,
                "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                "sourceRanges": ["0.0.0.0/0"],
                "disabled": False,
            },
            lambda s: s["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}] and s["priority"] == 1000,
        ),
        (
            "InstanceList",
            {"items": [], "id": "x"},
            lambda s: s["kind"] == "compute#instanceList" and s["items"] == [],
        ),
    ],
)
def test_shape_real_schemas(name, data, check):
    shaped = shape(name, data)
    assert check(shaped), shaped


def test_shape_takes_datetimes_and_enums():
    import datetime
    import enum

    class Status(enum.Enum):
        RUNNING = "RUNNING"

    shaped = shape(
        "Instance",
        {
            "creationTimestamp": datetime.datetime(
                2024, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
            ),
            "lastStartTimestamp": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "status": Status.RUNNING,
        },
    )
    assert shaped["creationTimestamp"] == "2024-01-02T03:04:05.678-08:00"
    assert shaped["lastStartTimestamp"] == "2024-01-02T03:04:05.000+00:00"
    assert shaped["status"] == "RUNNING"


def test_shape_keeps_a_given_kind_and_omits_none():
    assert shape("Zone", {"kind": "compute#zone", "name": None}) == {"kind": "compute#zone"}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("Instance", {"status": "EXPLODED"}),  # enum
        ("Instance", {"canIpForward": "false"}),  # boolean
        ("Instance", {"id": "12a"}),  # uint64
        ("Instance", {"id": -1}),
        ("Instance", {"id": 2**64}),
        ("MachineType", {"guestCpus": 2**31}),  # int32
        ("MachineType", {"guestCpus": True}),
        ("Instance", {"name": 5}),  # string
        ("Instance", {"labels": {"a": 1}}),  # map value
        ("Instance", {"labels": ["a"]}),
        ("Instance", {"disks": {"boot": True}}),  # array
        ("Instance", {"disks": "x"}),
        ("Instance", {"scheduling": "x"}),  # object
        ("Instance", {"scheduling": {"onHostMaintenance": "SOMETIMES"}}),  # nested enum
    ],
)
def test_shape_refuses_data_the_schema_cannot_carry(name, data):
    with pytest.raises(ValueError):
        shape(name, data)


# --------------------------------------------------------------------------- parse_body


def test_parse_body_instance_insert():
    body = {
        "name": "web-1",
        "machineType": "zones/us-a/machineTypes/e2-small",
        "labels": {"env": "prod"},
        "canIpForward": False,
        "disks": [{"boot": True, "initializeParams": {"sourceImage": "debian-12", "diskSizeGb": "20"}}],
        "networkInterfaces": [
            {"network": "global/networks/default", "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}
        ],
        "scheduling": {"onHostMaintenance": "TERMINATE", "automaticRestart": None},
        "metadata": {"items": [{"key": "k", "value": "v"}]},
    }
    parsed = parse_body("Instance", body)
    assert parsed["disks"][0]["initializeParams"]["diskSizeGb"] == 20  # a string int64 becomes an int
    assert parsed["scheduling"] == {"onHostMaintenance": "TERMINATE"}  # null is absent
    assert parsed["labels"] == {"env": "prod"} and parsed["canIpForward"] is False


@pytest.mark.parametrize("given", [20, "20", 20.0, "2e1", "-0"])
def test_parse_body_int64_as_number_or_string(given):
    parsed = parse_body("Disk", {"name": "d", "sizeGb": given})
    assert parsed["sizeGb"] == int(float(given))


@pytest.mark.parametrize("given", [1000, "1000"])
def test_parse_body_int32_as_number_or_string(given):
    assert parse_body("Firewall", {"priority": given})["priority"] == 1000


def test_parse_body_ignores_output_only_fields():
    parsed = parse_body(
        "Instance",
        {"name": "a", "id": "123", "kind": "compute#instance", "status": "RUNNING", "selfLink": "x"},
    )
    assert parsed == {"name": "a"}
    # They are still fields: a wrong type in one is an error, as any field's.
    with pytest.raises(BodyError):
        parse_body("Instance", {"status": "NOT_A_STATUS"})


def test_parse_body_unknown_field_in_googles_words():
    with pytest.raises(BodyError) as err:
        parse_body("Instance", {"name": "a", "x": 1})
    assert (
        str(err.value)
        == "Invalid JSON payload received. Unknown name \"x\" at 'resource': Cannot find field."
    )
    assert err.value.violations == [("resource", str(err.value))]
    assert err.value.reason == "invalid" and err.value.status == "INVALID_ARGUMENT"


def test_parse_body_nested_unknown_fields_name_their_path():
    with pytest.raises(BodyError) as err:
        parse_body("Instance", {"scheduling": {"autoRestart": True}, "networkInterfaces": [{}, {"nic": 1}]})
    assert str(err.value).splitlines() == [
        "Invalid JSON payload received. Unknown name \"autoRestart\" at 'resource.scheduling': Cannot find field.",
        "Invalid JSON payload received. Unknown name \"nic\" at 'resource.network_interfaces[1]': Cannot find field.",
    ]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        (
            "Instance",
            {"canIpForward": "yes"},
            "Invalid value at 'resource.can_ip_forward' (TYPE_BOOL), \"yes\"",
        ),
        ("Instance", {"canIpForward": 1}, "Invalid value at 'resource.can_ip_forward' (TYPE_BOOL), 1"),
        ("Disk", {"sizeGb": "ten"}, "Invalid value at 'resource.size_gb' (TYPE_INT64), \"ten\""),
        ("Disk", {"sizeGb": 1.5}, "Invalid value at 'resource.size_gb' (TYPE_INT64), 1.5"),
        ("Disk", {"sizeGb": True}, "Invalid value at 'resource.size_gb' (TYPE_INT64), true"),
        ("Disk", {"sizeGb": str(2**63)}, f"Invalid value at 'resource.size_gb' (TYPE_INT64), \"{2**63}\""),
        ("Instance", {"id": "-1"}, "Invalid value at 'resource.id' (TYPE_UINT64), \"-1\""),
        ("Firewall", {"priority": 2**31}, f"Invalid value at 'resource.priority' (TYPE_INT32), {2**31}"),
        ("Instance", {"name": 5}, "Invalid value at 'resource.name' (TYPE_STRING), 5"),
        ("Instance", {"name": {"a": 1}}, "Invalid value at 'resource.name' (TYPE_STRING), {\"a\":1}"),
        (
            "Firewall",
            {"direction": "SIDEWAYS"},
            "Invalid value at 'resource.direction' (TYPE_ENUM), \"SIDEWAYS\"",
        ),
        ("Firewall", {"direction": 0}, "Invalid value at 'resource.direction' (TYPE_ENUM), 0"),
        (
            "Firewall",
            {"allowed": [{"IPProtocol": 6}]},
            "Invalid value at 'resource.allowed[0].I_p_protocol' (TYPE_STRING), 6",
        ),
        (
            "Firewall",
            {"sourceRanges": "0.0.0.0/0"},
            "Invalid value at 'resource.source_ranges' (TYPE_STRING), \"0.0.0.0/0\"",
        ),
        (
            "Firewall",
            {"sourceRanges": [["a"]]},
            "Invalid value at 'resource.source_ranges[0]' (TYPE_STRING), [\"a\"]",
        ),
        (
            "Instance",
            {"scheduling": "x"},
            "Invalid value at 'resource.scheduling' (type.googleapis.com/google.cloud.compute.v1.Scheduling), \"x\"",
        ),
        (
            "Instance",
            {"name": ["a"]},
            "Invalid JSON payload received. Unknown name \"name\" at 'resource': Proto field is not repeating, cannot start list.",
        ),
        ("Instance", {"labels": {"a": 1}}, "Invalid value at 'resource.labels[0].value' (TYPE_STRING), 1"),
        (
            "Instance",
            {"labelFingerprint": "not base64!"},
            "Invalid value at 'resource.label_fingerprint' (TYPE_BYTES), \"not base64!\"",
        ),
    ],
)
def test_parse_body_wrong_types(name, body, message):
    with pytest.raises(BodyError) as err:
        parse_body(name, body)
    assert str(err.value) == message


@pytest.mark.parametrize("body", [None, [], "x", 5, True])
def test_parse_body_must_be_an_object(body):
    with pytest.raises(BodyError) as err:
        parse_body("Instance", body)
    assert err.value.field == "resource"


def test_parse_body_reports_every_problem_and_root_is_configurable():
    with pytest.raises(BodyError) as err:
        parse_body("Firewall", {"nope": 1, "priority": "high"}, root="firewall_resource")
    assert [field for field, _ in err.value.violations] == ["firewall_resource", "firewall_resource.priority"]


def test_parse_body_accepts_what_shape_produces():
    """Whatever the server renders, a client may send back (output fields dropped)."""
    shaped = shape("Instance", SAMPLE_INSTANCE)
    parsed = parse_body("Instance", json.loads(json.dumps(shaped)))
    assert "id" not in parsed and "status" not in parsed and "kind" not in parsed
    assert parsed["disks"][0]["diskSizeGb"] == 10 and parsed["labels"] == SAMPLE_INSTANCE["labels"]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_instance_keys = st.sampled_from(
    [
        "name",
        "id",
        "labels",
        "disks",
        "scheduling",
        "canIpForward",
        "status",
        "networkInterfaces",
        "tags",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, st.dictionaries(_instance_keys, _json, max_size=5)))
def test_parse_body_never_raises_anything_but_body_error(body):
    try:
        parsed = parse_body("Instance", body)
    except BodyError as err:
        assert err.violations and all(desc for _, desc in err.violations)
        return
    json.dumps(parsed)
