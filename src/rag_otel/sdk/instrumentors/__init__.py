"""One OpenTelemetry ``BaseInstrumentor`` per client library, each optional."""
