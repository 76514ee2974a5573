"""Operations port: metrics, health, the ops HTTP server, log formatting and process policy."""
