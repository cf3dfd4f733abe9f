"""Modbus TCP driver: request planning, register codec, and the polling driver."""

from drivers.modbus.codec import decode, encode
from drivers.modbus.driver import ModbusDriver, ModbusStats
from drivers.modbus.planner import PlanError, Request, plan_requests

__all__ = ["ModbusDriver", "ModbusStats", "PlanError", "Request", "decode", "encode", "plan_requests"]
