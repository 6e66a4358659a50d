"""tls and cookies: what a browser on the page's origin would refuse.

- tls: with an https URL, the certificate must verify (chain, name, dates)
  against the system's CAs, or the one given with --ca; it is a WARN when it
  expires within 14 days. An https page cannot use a plain-http server
  (mixed content).
- cookies: a cookie the handshake sets (the kit's session binding, a sticky
  cookie of a balancer) must be one the browser will send back: SameSite=None
  needs Secure, Secure needs https, and a page on another site needs
  SameSite=None; Secure.
"""
import socket
import ssl
import time
from typing import List, Optional
from urllib.parse import urlsplit

from doctor.probe import Probe
from doctor.result import FAIL, PASS, SKIP, WARN, Result

EXPIRY_WARN_DAYS = 14


def check_tls(probe: Probe) -> List[Result]:
    target = probe.target
    page_https = probe.origin.startswith('https://')
    if target.scheme != 'https':
        if page_https:
            return [Result('tls', FAIL, f'the page is https ({probe.origin}) '
                           f'but the server is plain http: browsers block it '
                           f'(mixed content)', probe.fix(
                               'TLS=on with make certs (or your certificate) '
                               'and connect to https://', 'serve Socket.IO '
                               'over https'), 'tls-mixed-content')]
        return [Result('tls', PASS, 'plain http page and server: no '
                       'certificate to check (TLS=on for production)')]
    context = ssl.create_default_context()
    try:
        with socket.create_connection((target.host, target.port),
                                      probe.timeout) as raw:
            with context.wrap_socket(raw, server_hostname=target.host) as tls:
                cert = tls.getpeercert()
                version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return [Result('tls', FAIL, f'certificate of {target.host}:'
                       f'{target.port} does not verify: {exc.verify_message}',
                       'serve a certificate for this name from a CA browsers '
                       'trust (make certs: trust certs/ca.crt, or pass --ca)',
                       'tls-invalid')]
    except (OSError, ssl.SSLError) as exc:
        return [Result('tls', FAIL, f'TLS to {target.host}:{target.port}: '
                       f'{exc}', 'check the balancer listens with TLS there',
                       'tls-error')]
    days = (ssl.cert_time_to_seconds(cert['notAfter']) - time.time()) / 86400
    subject = dict(item[0] for item in cert.get('subject', ()))
    saw = (f'{version}, certificate for {subject.get("commonName", "?")} '
           f'valid {days:.0f} more days')
    if days < EXPIRY_WARN_DAYS:
        return [Result('tls', WARN, saw, 'renew the certificate',
                       'tls-expiring')]
    return [Result('tls', PASS, saw)]


def _site(scheme: str, host: str) -> str:
    """Schemeful site, approximated: the last two labels of a name."""
    labels = host.split('.')
    if not host.replace('.', '').isdigit() and len(labels) > 2:
        host = '.'.join(labels[-2:])
    return f'{scheme}://{host}'


def _attributes(set_cookie: str):
    name = set_cookie.split('=', 1)[0].strip()
    attrs = {}
    for part in set_cookie.split(';')[1:]:
        key, _, value = part.strip().partition('=')
        attrs[key.lower()] = value.strip().lower()
    return name, attrs


def cookie_problem(set_cookie: str, server: str, page: str) -> Optional[str]:
    """Why a browser on `page` would not send this cookie back to `server`."""
    name, attrs = _attributes(set_cookie)
    samesite = attrs.get('samesite', 'lax')
    secure = 'secure' in attrs
    server_parts, page_parts = urlsplit(server), urlsplit(page)
    if samesite == 'none' and not secure:
        return f'{name}: SameSite=None without Secure is dropped by browsers'
    if secure and server_parts.scheme != 'https':
        return f'{name}: Secure, but the server is plain http'
    cross_site = _site(server_parts.scheme, server_parts.hostname or '') != \
        _site(page_parts.scheme, page_parts.hostname or '')
    if cross_site and samesite != 'none':
        return (f'{name}: SameSite={samesite.title()}, but the page '
                f'({page}) is on another site, so the browser never sends it')
    return None


def check_cookies(probe: Probe) -> List[Result]:
    resp = probe.handshake.response
    cookies = resp.values('Set-Cookie') if resp is not None else []
    if not cookies:
        return [Result('cookies', SKIP, 'the handshake sets no cookie')]
    server = probe.target.origin
    problems = [p for p in (cookie_problem(c, server, probe.origin)
                            for c in cookies) if p]
    names = ', '.join(_attributes(c)[0] for c in cookies)
    if problems:
        return [Result('cookies', FAIL, '; '.join(problems), probe.fix(
            'same-site page and API, or SESSION_COOKIE_SAMESITE=None with '
            'TLS=on', 'SameSite=None; Secure over https for a cross-site '
            'page'), 'cookie-not-sent')]
    return [Result('cookies', PASS, f'{names}: a page on {probe.origin} '
                   f'sends them back')]
