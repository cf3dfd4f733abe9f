"""Sparkplug B (Eclipse Sparkplug 3.0): the gateway as an MQTT edge node for SCADA hosts.

``SparkplugNode`` is the service and pipeline sink the daemon attaches; see README.md here for
topics, session rules, settings and what a host receives.
"""

from gateway.northbound.sparkplug.commands import Commands, WritePathCommands
from gateway.northbound.sparkplug.model import device_tags_from_plans
from gateway.northbound.sparkplug.node import SparkplugNode

__all__ = ["Commands", "SparkplugNode", "WritePathCommands", "device_tags_from_plans"]
