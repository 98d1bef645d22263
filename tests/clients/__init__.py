"""Client compatibility matrix: real Kafka clients, unmodified, against live fastlog brokers."""
