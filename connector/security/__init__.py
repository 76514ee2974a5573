"""Security rules as pure logic: the transport a configuration may ask for, what a DLQ may carry."""
