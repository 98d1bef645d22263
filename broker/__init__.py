"""fastlog's Kafka-compatible broker: network, protocol, handlers, coordinators, metadata."""
