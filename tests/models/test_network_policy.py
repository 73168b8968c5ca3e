"""Which addresses the network policy refuses by default, and how operators widen it (H2 of issue 9)."""

import pytest

from models.network_policy import AddressRefused, NetworkPolicy, parse_networks

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "fc00::1",
    "fd12:3456::1",
    "169.254.169.254",
    "fe80::1",
    "224.0.0.1",
    "ff02::1",
    "0.0.0.0",
    "::",
    "100.64.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "240.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused_by_default(address):
    assert not NetworkPolicy().permits(address)
    with pytest.raises(AddressRefused):
        NetworkPolicy().check("somewhere", [address])


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_permitted(address):
    assert NetworkPolicy().permits(address)


def test_one_internal_address_among_public_ones_refuses_the_name():
    with pytest.raises(AddressRefused):
        NetworkPolicy().check("rebinding.example", ["8.8.8.8", "127.0.0.1"])
    with pytest.raises(AddressRefused):
        NetworkPolicy().check("nothing.example", [])


def test_operators_widen_the_policy_with_cidrs():
    policy = NetworkPolicy.from_setting("10.20.0.0/16, 127.0.0.1")
    assert policy.permits("10.20.3.4") and policy.permits("127.0.0.1") and policy.permits("::ffff:10.20.3.4")
    assert not policy.permits("10.21.0.1") and not policy.permits("127.0.0.2")
    assert not policy.permits("not-an-address")
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not a CIDR"):
        parse_networks("10.0.0.0/33")
