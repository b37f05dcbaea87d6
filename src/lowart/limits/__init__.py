"""Admission limits: RPM windows and token-quota reservations, behind one interface."""
