"""The kit's own namespace, `/_kit`: instance statistics, for clients with the admin role.

Its name sits beside the reserved HTTP prefix, away from the names
applications use (`sio.instrument()` takes `/admin` for the Admin UI).

With AUTH_MODE=jwt a CONNECT to /_kit needs ADMIN_ROLE in the token's
JWT_ROLE_CLAIM (`connect_error`: `unauthorized: admin role required`);
with AUTH_MODE=none the namespace refuses everyone, since nobody can prove
the role.
"""
from socketio_kit.policy.auth import Unauthorized

NAMESPACE = '/_kit'


def register_admin(sio, auth, instance: str):
    """Add the /_kit handlers to the instance's server."""

    @sio.on('connect', namespace=NAMESPACE)
    def admin_connect(sid, environ, auth_data=None):
        try:
            claims = auth.claims(auth_data)
            if not auth.enabled or not auth.is_admin(claims):
                raise Unauthorized('admin role required')
        except Unauthorized as exc:
            sio.count(f'admin refused: {exc.why}')
            raise
        return True

    @sio.on('stats', namespace=NAMESPACE)
    def stats(sid, data=None):
        """Counts an operator wants: clients, refusals by reason."""
        return {'ok': True, 'instance': instance,
                'clients': len(sio.eio.sockets),
                'websockets': sio.eio.websockets,
                'refused': dict(sio.refused or {})}

    @sio.on('*', namespace=NAMESPACE)
    def unknown(event, sid, data=None):
        return {'ok': False, 'error': f'unknown event {event!r}',
                'instance': instance}
