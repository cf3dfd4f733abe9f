"""The plant model every layer shares: the catalog schema of `config/plant.toml` (units,
equipment, tags with their OPC-UA and Modbus addresses), the southbound devices and scan
groups that read them, the compiled tag catalog, and the loader. Imports nothing of the
gateway, the drivers, the analytics or the simulator."""
