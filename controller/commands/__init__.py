"""Run command: durable fan-out of one command to many hosts with SSM rate control."""
