"""Delivery: from a record to a broker acknowledgement: sink, registry serde, Avro writer."""
