"""scheme: can a page on the origin reach the URL at all (mixed content)?"""
import urllib.parse
from typing import List

from doctor.fixes import fix
from doctor.probe import Probe
from doctor.result import FAIL, PASS, WARN, Result


def check(probe: Probe) -> List[Result]:
    origin = probe.origin
    page = urllib.parse.urlsplit(origin)
    url = probe.target.scheme
    if page.scheme not in ('http', 'https') or not page.hostname:
        return [Result('scheme', FAIL, f'--origin {origin!r} is not an origin',
                       'pass the page origin as scheme://host[:port], e.g. '
                       'http://localhost:8081', 'bad-origin-arg')]
    note = ''
    if page.hostname != probe.target.host:
        note = (f'; note: page host {page.hostname} and URL host '
                f'{probe.target.host} are different sites, so a SameSite=Lax '
                f'cookie set by the URL is not sent from the page')
    if page.scheme == 'https' and url == 'http':
        return [Result('scheme', FAIL, f'https page ({origin}) -> http URL: the '
                       'browser blocks http:// and ws:// from an https page as '
                       'mixed content', fix(probe, 'scheme-mixed'),
                       'scheme-mixed')]
    if page.scheme == 'http' and url == 'https':
        return [Result('scheme', WARN, f'http page ({origin}) -> https URL: it '
                       'connects, but http and https are different sites, so '
                       'SameSite cookies are not sent and Secure cookies cannot'
                       ' be read by the page' + note,
                       'serve the page over https too', 'scheme-reverse')]
    return [Result('scheme', PASS, f'{page.scheme} page -> {url} URL: same '
                   f'security context' + note)]
