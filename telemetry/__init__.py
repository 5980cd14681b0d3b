"""Kartu's telemetry: Prometheus metrics (``metrics``), OpenTelemetry traces (``tracing``) and
structured logs (``logs``), shared by the worker, the gateway, the CLI and the sandbox."""
