"""OSDP access panels: a control-panel driver for several panels on one line, and a door-panel simulator."""
