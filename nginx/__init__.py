"""The balancer: nginx config template and its renderer."""
