"""Vendor adapters over one shared HTTP transport; a registry maps vendor types to adapters."""
