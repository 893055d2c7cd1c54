"""The EC2 Query protocol: request parsing, response and error rendering."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
from typing import Any

import pytest
from botocore.parsers import create_parser
from hypothesis import given
from hypothesis import strategies as st

from ocs import errors
from ocs.api_ec2.protocol import (
    NON_OPERATION_PARAMS,
    load_service_model,
    operation_names,
    parse_request,
    request,
    response,
    serialize_error,
    serialize_response,
)
from ocs.api_ec2.protocol.request import wire_name


def op(name: str) -> Any:
    return load_service_model().operation_model(name)


def parse(action: str, **params: str | list[str]) -> dict[str, Any]:
    return parse_request(op(action), params)


def parse_raises(action: str, params: dict[str, Any], error: type[errors.OcsError], **kwargs: str) -> None:
    with pytest.raises(error) as caught:
        parse_request(op(action), params)
    assert caught.value.code == error.code
    assert caught.value.status == 400
    for key, value in kwargs.items():
        assert caught.value.kwargs[key] == value


def botocore_parse(action: str, xml: bytes, status: int = 200) -> dict[str, Any]:
    response = {"body": xml, "headers": {}, "status_code": status}
    parsed: dict[str, Any] = create_parser("ec2").parse(response, op(action).output_shape)
    return parsed


# --- parse: names and structure -------------------------------------------------


def test_parse_nests_lists_and_structures_by_member_name() -> None:
    params = {
        "InstanceId.1": "i-1",
        "InstanceId.2": "i-2",
        "Filter.1.Name": "instance-state-name",
        "Filter.1.Value.1": "running",
        "Filter.1.Value.2": "pending",
        "MaxResults": "10",
        "DryRun": "false",
    }
    assert parse_request(op("DescribeInstances"), params) == {
        "InstanceIds": ["i-1", "i-2"],
        "Filters": [{"Name": "instance-state-name", "Values": ["running", "pending"]}],
        "MaxResults": 10,
        "DryRun": False,
    }


def test_parse_uses_query_names_and_capitalized_location_names() -> None:
    params = {
        "ImageId": "ami-1",
        "MinCount": "1",
        "MaxCount": "1",
        "SecurityGroupId.1": "sg-1",  # member SecurityGroupIds, locationName SecurityGroupId
        "NetworkInterface.1.DeviceIndex": "0",
        "NetworkInterface.1.PrivateIpAddresses.1.PrivateIpAddress": "10.0.0.5",  # queryName
        "NetworkInterface.1.Ipv6Addresses.1.Ipv6Address": "fd00::5",  # queryName
        "ClientToken": "tok",  # locationName clientToken, capitalized on input
    }
    assert parse_request(op("RunInstances"), params) == {
        "ImageId": "ami-1",
        "MinCount": 1,
        "MaxCount": 1,
        "SecurityGroupIds": ["sg-1"],
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "PrivateIpAddresses": [{"PrivateIpAddress": "10.0.0.5"}],
                "Ipv6Addresses": [{"Ipv6Address": "fd00::5"}],
            }
        ],
        "ClientToken": "tok",
    }


def test_list_indexes_may_have_gaps_and_sort_numerically() -> None:
    params = {f"InstanceId.{index}": f"i-{index}" for index in (10, 2, 9, 0)}
    assert parse("DescribeInstances", **params) == {"InstanceIds": ["i-0", "i-2", "i-9", "i-10"]}


def test_an_empty_value_for_a_list_is_an_empty_list() -> None:
    assert parse("DescribeInstances", InstanceId="") == {"InstanceIds": []}
    assert parse("DescribeInstances", **{"Filter": "", "InstanceId.1": "i-1"}) == {
        "Filters": [],
        "InstanceIds": ["i-1"],
    }


def test_a_repeated_parameter_takes_its_first_value() -> None:
    assert parse("DescribeInstances", **{"InstanceId.1": ["i-1", "i-2"], "DryRun": ["true"]}) == {
        "InstanceIds": ["i-1"],
        "DryRun": True,
    }
    assert parse("DescribeInstances", **{"NextToken": []}) == {"NextToken": ""}


def test_auth_and_transport_parameters_are_ignored() -> None:
    params = dict.fromkeys(NON_OPERATION_PARAMS, "x") | {"X-Amz-Whatever": "y", "x-amz-date": "z"}
    assert parse_request(op("DescribeRegions"), params) == {}


def test_no_input_member_is_named_like_an_auth_parameter() -> None:
    model = load_service_model()
    for name in operation_names():
        shape = model.operation_model(name).input_shape
        wires = {wire_name(member_shape, member) for member, member_shape in shape.members.items()}
        assert not wires & NON_OPERATION_PARAMS, name
        assert not [wire for wire in wires if wire.lower().startswith("x-amz-")], name


# --- parse: values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("TRUE", True), ("False", False), ("false", False)]
)
def test_booleans_are_case_insensitive(text: str, value: bool) -> None:
    assert parse("DescribeRegions", DryRun=text) == {"DryRun": value}


def test_timestamps_become_aware_utc_datetimes() -> None:
    parsed = parse(
        "DescribeSpotPriceHistory",
        StartTime="2026-11-25T12:00:00Z",
        EndTime="2026-11-25T14:30:00.250+02:00",
    )
    assert parsed["StartTime"] == dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
    assert parsed["EndTime"] == dt.datetime(2026, 11, 25, 12, 30, 0, 250000, tzinfo=dt.UTC)
    assert parsed["EndTime"].tzinfo is dt.UTC
    naive = parse("DescribeSpotPriceHistory", StartTime="2026-11-25T12:00:00")["StartTime"]
    assert naive == dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def test_blobs_are_base64_decoded_and_strings_are_not() -> None:
    parsed = parse("ImportKeyPair", KeyName="k", PublicKeyMaterial="c3NoLXJzYSBBQUFB")
    assert parsed["PublicKeyMaterial"] == b"ssh-rsa AAAA"
    # RunInstances UserData is a string shape: it stays as the client sent it.
    parsed = parse("RunInstances", ImageId="ami-1", MinCount="1", MaxCount="1", UserData="IyEvYmluL3No")
    assert parsed["UserData"] == "IyEvYmluL3No"


def test_numbers() -> None:
    assert parse("DescribeVpcs", MaxResults="+5")["MaxResults"] == 5
    assert (
        parse(
            "CreateCapacityReservation",
            InstanceType="t3.micro",
            InstancePlatform="Linux/UNIX",
            InstanceCount="1",
            CommitmentDuration="200000000",
        )["CommitmentDuration"]
        == 200000000
    )
    fleet = parse(
        "CreateFleet",
        **{
            "LaunchTemplateConfigs.1.Overrides.1.WeightedCapacity": "2.5e0",
            "TargetCapacitySpecification.TotalTargetCapacity": "1",
        },
    )
    assert fleet["LaunchTemplateConfigs"][0]["Overrides"][0]["WeightedCapacity"] == 2.5


def test_enum_values_are_accepted_exactly() -> None:
    parsed = parse("RunInstances", ImageId="ami-1", MinCount="1", MaxCount="1", InstanceType="t3.micro")
    assert parsed["InstanceType"] == "t3.micro"
    # Instance types are the cloud's (operators create them): the handler judges them.
    custom = parse("RunInstances", ImageId="ami-1", MinCount="1", MaxCount="1", InstanceType="ocs1.huge")
    assert custom["InstanceType"] == "ocs1.huge"


# --- parse: errors ------------------------------------------------------------------


def test_missing_required_parameter_is_named_as_sent() -> None:
    parse_raises("DeregisterImage", {"DryRun": "true"}, errors.MissingParameter, name="ImageId")
    parse_raises("ImportKeyPair", {"KeyName": "k"}, errors.MissingParameter, name="PublicKeyMaterial")


def test_missing_nested_required_parameter_names_its_path() -> None:
    params = {"PrefixListName": "p", "MaxEntries": "5", "AddressFamily": "IPv4", "Entry.3.Description": "d"}
    parse_raises("CreateManagedPrefixList", params, errors.MissingParameter, name="Entry.3.Cidr")


@pytest.mark.parametrize(
    "key",
    [
        "Foo",
        "InstanceId.x",
        "InstanceId.01",
        "InstanceId.-1",
        "InstanceId.1.Sub",
        "Filter.1.Nme",
        "MaxResults.2",  # only ``.1`` stands for a scalar
        "MaxResults.1.1",
        "Filter.1",
        "Filter",  # a bare name stands for item 1 only in a list of scalars
        "instanceId.1",  # names are case-sensitive
        "",
    ],
)
def test_unknown_parameters(key: str) -> None:
    parse_raises("DescribeInstances", {key: "v"}, errors.UnknownParameter, name=key)


def test_bare_name_of_a_list_of_scalars_is_its_first_item() -> None:
    # boto 2 and libcloud send KeyName=x, InstanceId=x, GroupName=x: EC2 takes them.
    assert parse("DescribeKeyPairs", KeyName="k") == {"KeyNames": ["k"]}
    assert parse("DescribeInstances", InstanceId="i-1") == {"InstanceIds": ["i-1"]}
    assert parse("DescribeSecurityGroups", GroupName="g") == {"GroupNames": ["g"]}
    assert parse("DescribeImages", ImageId="ami-1") == {"ImageIds": ["ami-1"]}
    assert parse("DescribeInstances", **{"Filter.1.Name": "n", "Filter.1.Value": "v"}) == {
        "Filters": [{"Name": "n", "Values": ["v"]}]
    }
    assert parse("DescribeInstances", InstanceId="") == {"InstanceIds": []}
    parse_raises("DescribeInstances", {"Filter": "x"}, errors.UnknownParameter, name="Filter")


def test_first_item_of_a_scalar_is_the_scalar() -> None:
    # boto 2's GetConsoleOutput sends InstanceId.1.
    assert parse("GetConsoleOutput", **{"InstanceId.1": "i-1"}) == {"InstanceId": "i-1"}
    assert parse("DescribeInstances", **{"MaxResults.1": "5"}) == {"MaxResults": 5}
    parse_raises(
        "DescribeInstances", {"MaxResults.1": "x"}, errors.InvalidParameterValue, name="MaxResults.1"
    )


@pytest.mark.parametrize(
    ("action", "params", "name"),
    [
        ("DescribeInstances", {"MaxResults": "ten"}, "MaxResults"),
        ("DescribeInstances", {"MaxResults": "1.0"}, "MaxResults"),
        ("DescribeInstances", {"MaxResults": " 1"}, "MaxResults"),
        ("DescribeInstances", {"MaxResults": "1_000"}, "MaxResults"),
        ("DescribeInstances", {"MaxResults": "٣"}, "MaxResults"),  # a non-ASCII digit
        ("DescribeInstances", {"MaxResults": "9" * 5000}, "MaxResults"),
        ("DescribeVpcs", {"MaxResults": "4"}, "MaxResults"),  # min 5
        ("DescribeVpcs", {"MaxResults": "1001"}, "MaxResults"),  # max 1000
        ("DescribeInstances", {"DryRun": "yes"}, "DryRun"),
        ("DescribeInstances", {"DryRun": ""}, "DryRun"),
        ("DescribeInstances", {"Filter.1.Name": "x", "Filter.1.Value.1": "y", "DryRun": "1"}, "DryRun"),
        ("DescribeVolumes", {"Filter.1.Name": "x", "Filter.1.Value.1": "y", "MaxResults": "x"}, "MaxResults"),
        ("CreateVolume", {"AvailabilityZone": "a", "VolumeType": "gp9"}, "VolumeType"),
        ("DescribeSpotPriceHistory", {"StartTime": "yesterday"}, "StartTime"),
        ("DescribeSpotPriceHistory", {"StartTime": "2026-13-01T00:00:00Z"}, "StartTime"),
        ("ImportKeyPair", {"KeyName": "k", "PublicKeyMaterial": "not base64!"}, "PublicKeyMaterial"),
        (
            "CreateFleet",
            {"LaunchTemplateConfigs.1.Overrides.1.Priority": "high"},
            "LaunchTemplateConfigs.1.Overrides.1.Priority",
        ),
        (
            "CreateFleet",
            {"LaunchTemplateConfigs.1.Overrides.1.Priority": "nan"},
            "LaunchTemplateConfigs.1.Overrides.1.Priority",
        ),
        (
            "CreateFleet",
            {"LaunchTemplateConfigs.1.Overrides.1.Priority": "Infinity"},
            "LaunchTemplateConfigs.1.Overrides.1.Priority",
        ),
    ],
)
def test_invalid_values(action: str, params: dict[str, str], name: str) -> None:
    parse_raises(action, params, errors.InvalidParameterValue, name=name)


def test_invalid_value_message_names_value_parameter_and_reason() -> None:
    with pytest.raises(errors.InvalidParameterValue) as caught:
        parse("DescribeVpcs", MaxResults="1001")
    assert (
        str(caught.value)
        == "Value (1001) for parameter MaxResults is invalid. It must be between 5 and 1000."
    )
    with pytest.raises(errors.InvalidParameterValue) as caught:
        parse("DescribeInstances", MaxResults="x" * 500)
    assert len(str(caught.value)) < 200


def test_value_errors_come_before_missing_parameters() -> None:
    parse_raises("DeregisterImage", {"DryRun": "maybe"}, errors.InvalidParameterValue, name="DryRun")


# --- responses ----------------------------------------------------------------------

REGIONS = [
    {
        "RegionName": "us-east-1",
        "Endpoint": "ec2.us-east-1.amazonaws.com",
        "OptInStatus": "opt-in-not-required",
    },
    {"RegionName": "eu-west-3", "Endpoint": "ec2.eu-west-3.amazonaws.com", "OptInStatus": "opted-in"},
]


def test_golden_describe_regions() -> None:
    xml = serialize_response(
        op("DescribeRegions"), {"Regions": REGIONS}, "59dbff89-35bd-4eac-99ed-be587EXAMPLE"
    )
    # Members come in the model's order (Region: OptInStatus, Geography, RegionName, Endpoint).
    assert xml.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>"
        "<regionInfo>"
        "<item><optInStatus>opt-in-not-required</optInStatus><regionName>us-east-1</regionName>"
        "<regionEndpoint>ec2.us-east-1.amazonaws.com</regionEndpoint></item>"
        "<item><optInStatus>opted-in</optInStatus><regionName>eu-west-3</regionName>"
        "<regionEndpoint>ec2.eu-west-3.amazonaws.com</regionEndpoint></item>"
        "</regionInfo>"
        "</DescribeRegionsResponse>"
    )
    parsed = botocore_parse("DescribeRegions", xml)
    assert parsed["Regions"] == REGIONS
    assert parsed["ResponseMetadata"]["RequestId"] == "59dbff89-35bd-4eac-99ed-be587EXAMPLE"


def test_golden_describe_instances_scalars_and_empty_list() -> None:
    launch = dt.datetime(2026, 11, 25, 13, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    result = {
        "Reservations": [
            {
                "ReservationId": "r-1",
                "Groups": [],
                "Instances": [
                    {
                        "InstanceId": "i-1",
                        "State": {"Code": 16, "Name": "running"},
                        "LaunchTime": launch,
                        "EbsOptimized": False,
                        "Tags": [{"Key": "a&b", "Value": "<x>"}],
                    },
                ],
            }
        ],
        "NextToken": None,
    }
    xml = serialize_response(op("DescribeInstances"), result, "r").decode()
    assert xml.endswith(
        "<requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><groupSet/>"
        "<instancesSet><item><ebsOptimized>false</ebsOptimized><instanceId>i-1</instanceId>"
        "<launchTime>2026-11-25T12:00:00.123Z</launchTime><tagSet><item><key>a&amp;b</key>"
        "<value>&lt;x&gt;</value></item></tagSet>"
        "<instanceState><code>16</code><name>running</name></instanceState>"
        "</item></instancesSet></item></reservationSet>"
        "</DescribeInstancesResponse>"
    )


def test_naive_timestamps_are_taken_as_utc() -> None:
    result = {"Reservations": [{"Instances": [{"LaunchTime": dt.datetime(2026, 1, 2, 3, 4, 5)}]}]}
    xml = serialize_response(op("DescribeInstances"), result, "r")
    assert b"<launchTime>2026-01-02T03:04:05.000Z</launchTime>" in xml


def test_return_member_and_operation_without_output() -> None:
    xml = serialize_response(op("DeleteKeyPair"), {"Return": True, "KeyPairId": "key-1"}, "r")
    assert xml.endswith(
        b"<requestId>r</requestId><return>true</return><keyPairId>key-1</keyPairId></DeleteKeyPairResponse>"
    )
    assert op("DeleteTags").output_shape is None
    xml = serialize_response(op("DeleteTags"), {}, "r")
    assert xml == (  # EC2 answers <return>true</return> when the model has no output
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<DeleteTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
        b"<return>true</return></DeleteTagsResponse>"
    )
    assert botocore_parse("DeleteTags", xml)["ResponseMetadata"]["RequestId"] == "r"


@pytest.mark.parametrize(
    "action",
    [
        "CreateTags",
        "RebootInstances",
        "DeleteSubnet",
        "DeleteVpc",
        "ModifyInstanceAttribute",
        "ModifyImageAttribute",
        "ResetImageAttribute",
        "ModifySubnetAttribute",
        "ModifyVpcAttribute",
    ],
)
def test_actions_without_output_return_true(action: str) -> None:
    assert op(action).output_shape is None
    xml = serialize_response(op(action), None, "r")
    assert xml.endswith(f"<requestId>r</requestId><return>true</return></{action}Response>".encode())
    assert botocore_parse(action, xml)["ResponseMetadata"]["RequestId"] == "r"


def test_scalars_come_before_structures_and_lists() -> None:
    vpc = {
        "VpcId": "vpc-1",
        "OwnerId": "111122223333",
        "State": "available",
        "CidrBlock": "10.0.0.0/16",
        "DhcpOptionsId": "default",
        "InstanceTenancy": "default",
        "IsDefault": False,
        "CidrBlockAssociationSet": [{"AssociationId": "a", "CidrBlock": "10.0.0.0/16"}],
        "Ipv6CidrBlockAssociationSet": [],
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    xml = serialize_response(op("DescribeVpcs"), {"Vpcs": [vpc]}, "r").decode()
    body = xml.split("<vpcSet><item>", 1)[1]
    # Scalars in model order, then the sets: boto 2 drops scalars after a nested </item>.
    assert body.startswith(
        "<ownerId>111122223333</ownerId><instanceTenancy>default</instanceTenancy>"
        "<isDefault>false</isDefault><vpcId>vpc-1</vpcId><state>available</state>"
        "<cidrBlock>10.0.0.0/16</cidrBlock><dhcpOptionsId>default</dhcpOptionsId>"
        "<ipv6CidrBlockAssociationSet/><cidrBlockAssociationSet>"
    )
    assert botocore_parse("DescribeVpcs", xml.encode())["Vpcs"] == [vpc]


def test_numbers_and_blobs_render_plainly() -> None:
    xml = serialize_response(
        op("DescribeSpotPriceHistory"), {"SpotPriceHistory": [{"SpotPrice": "0.0031"}]}, "r"
    )
    assert b"<spotPrice>0.0031</spotPrice>" in xml
    xml = serialize_response(op("DescribeVolumes"), {"Volumes": [{"Size": 8, "Iops": 3000}]}, "r")
    assert b"<size>8</size>" in xml
    result = {"InstanceTypes": [{"NetworkInfo": {"NetworkCards": [{"PeakBandwidthInGbps": 10}]}}]}
    xml = serialize_response(op("DescribeInstanceTypes"), result, "r")
    assert b"<peakBandwidthInGbps>10.0</peakBandwidthInGbps>" in xml


def test_control_characters_are_replaced_and_carriage_returns_kept() -> None:
    tags = [{"Key": "k", "Value": "a\x00b\x1bc\r\nd\ufffee"}]
    xml = serialize_response(op("DescribeTags"), {"Tags": tags}, "r")
    parsed = botocore_parse("DescribeTags", xml)
    assert parsed["Tags"][0]["Value"] == "a\ufffdb\ufffdc\r\nd\ufffde"


@given(st.text())
def test_any_text_survives_botocore(text: str) -> None:
    xml = serialize_response(op("DescribeTags"), {"Tags": [{"Key": text, "Value": text}]}, "r" + text)
    parsed = botocore_parse("DescribeTags", xml)
    expected = "".join("\ufffd" if bad_xml(char) else char for char in text)
    assert parsed["Tags"] == [{"Key": expected, "Value": expected}]
    assert parsed["ResponseMetadata"]["RequestId"] == "r" + expected


def bad_xml(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 and char not in "\t\n\r") or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF)


@pytest.mark.parametrize(
    ("result", "path"),
    [
        (
            {"Reservations": [{"Bogus": 1}]},
            "DescribeInstances.Reservations[0]: Reservation has no member(s) Bogus",
        ),
        ({"Reservatons": []}, "DescribeInstances: DescribeInstancesResult has no member(s) Reservatons"),
        (
            {"Reservations": [{"Instances": [{"LaunchTime": "2026-01-01"}]}]},
            "Reservations[0].Instances[0].LaunchTime",
        ),
        ({"Reservations": [{"Instances": [{"AmiLaunchIndex": "0"}]}]}, "AmiLaunchIndex: expected int"),
        ({"Reservations": [{"Instances": [{"AmiLaunchIndex": True}]}]}, "AmiLaunchIndex: expected int"),
        ({"Reservations": [{"Instances": [{"EbsOptimized": 1}]}]}, "EbsOptimized: expected bool"),
        ({"Reservations": [{"Instances": [{"InstanceId": 7}]}]}, "InstanceId: expected str"),
        ({"Reservations": {"a": 1}}, "Reservations: expected a list"),
        ({"Reservations": ["r-1"]}, "Reservations[0]: expected a dict"),
    ],
)
def test_results_that_do_not_fit_the_shape_are_programming_errors(result: dict[str, Any], path: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        serialize_response(op("DescribeInstances"), result, "r")
    assert not isinstance(caught.value, errors.OcsError)
    assert path in str(caught.value)


def test_result_for_an_operation_without_output_must_be_empty() -> None:
    with pytest.raises(ValueError, match="DeleteTags has no output"):
        serialize_response(op("DeleteTags"), {"Return": True}, "r")


# --- errors -------------------------------------------------------------------------


def test_error_document_is_exactly_ec2s() -> None:
    xml = serialize_error("InvalidInstanceID.Malformed", 'Invalid id: "i-<1>"', "req-9")
    assert xml == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Response><Errors><Error><Code>InvalidInstanceID.Malformed</Code>"
        b'<Message>Invalid id: "i-&lt;1&gt;"</Message></Error></Errors>'
        b"<RequestID>req-9</RequestID></Response>"
    )


@pytest.mark.parametrize("status", [400, 401, 403, 412, 500, 503])
def test_botocore_reads_code_message_and_request_id_from_errors(status: int) -> None:
    xml = serialize_error(
        "MissingParameter", "The request must contain the parameter ImageId & more", "req-1"
    )
    parsed = botocore_parse("RunInstances", xml, status=status)
    assert parsed["Error"] == {
        "Code": "MissingParameter",
        "Message": "The request must contain the parameter ImageId & more",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def test_parse_errors_render_through_the_error_document() -> None:
    with pytest.raises(errors.OcsError) as caught:
        parse("DeregisterImage")
    failure = caught.value
    parsed = botocore_parse(
        "DeregisterImage", serialize_error(failure.code, str(failure), "r"), failure.status
    )
    assert parsed["Error"] == {
        "Code": "MissingParameter",
        "Message": "The request must contain the parameter ImageId",
    }


def test_a_none_result_is_an_empty_one() -> None:
    assert serialize_response(op("DeleteTags"), None, "r") == serialize_response(op("DeleteTags"), {}, "r")
    assert serialize_response(op("DescribeInstances"), None, "r").endswith(
        b"<requestId>r</requestId></DescribeInstancesResponse>"
    )


def test_tables_compile_safely_from_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, names in ((request, ("_NODES", "_INPUTS")), (response, ("_NODES", "_OUTPUTS"))):
        for name in names:
            monkeypatch.setattr(module, name, {})
    actions = ["DescribeImages", "DescribeInstances", "DescribeVolumes", "DescribeInstanceTypes"]
    start = threading.Barrier(8)

    def work(index: int) -> tuple[dict[str, Any], bytes]:
        start.wait()
        action = actions[index % len(actions)]
        parsed = parse_request(op(action), {"DryRun": "true"} if index % 2 else {"DryRun": "false"})
        return parsed, serialize_response(op("DescribeInstances"), {"Reservations": []}, "r")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(work, range(8)))
    assert {outcome[1] for outcome in outcomes} == {
        serialize_response(op("DescribeInstances"), {"Reservations": []}, "r")
    }
