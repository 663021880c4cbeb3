"""The HTTPS API of the connector (API Gateway REST + Powertools event handler)."""
