"""The plant model every layer shares: the catalog schema of `config/plant.toml` (units,
equipment, tags with their OPC-UA and Modbus addresses and, for writable tags, their write
limits), the southbound devices and scan groups that read them, the compiled tag catalog, the
loader, and which device writes each writable tag (`writes.py`). Imports nothing of the
gateway, the drivers, the analytics or the simulator."""
