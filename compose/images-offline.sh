#!/usr/bin/env bash
# Build, with no container registry, everything the compose stack needs:
#   kit-base:bookworm      debootstrap'ed Debian 12 (minbase), imported into Docker
#   kit-python:3.11-offline, kit-nginx:offline, kit-redis:offline
#                          Debian's python3/nginx/redis-server on top of it
#   compose/.generated/wheelhouse/
#                          wheels of requirements.txt, built on the host
#                          (PyPI is reachable from the host, not from containers)
# and writes compose/.generated/offline.env, which points compose at them.
# Idempotent: an image or wheelhouse that already exists is kept; set
# REBUILD=1 to rebuild everything.
set -o errexit -o pipefail -o nounset

root="$(cd "$(dirname "$0")/.." && pwd)"
generated="$root/compose/.generated"
base_image="${BASE_IMAGE:-kit-base:bookworm}"
python_image="${OFFLINE_PYTHON_IMAGE:-kit-python:3.11-offline}"
nginx_image="${OFFLINE_NGINX_IMAGE:-kit-nginx:offline}"
redis_image="${OFFLINE_REDIS_IMAGE:-kit-redis:offline}"
rebuild="${REBUILD:-0}"
python="${PYTHON:-python3}"

say() { printf 'images-offline: %s\n' "$*"; }
# Drop the known, harmless noise of this machine from stderr: the legacy
# builder's deprecation banner (Debian's docker.io has no buildx) and pip's
# warnings about this machine's absent local indexes. Everything else passes.
quiet() {
    "$@" 2> >(grep -v -e 'legacy builder is deprecated' -e 'Install the buildx' \
        -e 'docs.docker.com/go/buildx' -e 'is ignored: it is neither a file nor a directory' \
        -e '^[[:space:]]*$' >&2 || true)
}
have_image() { [ "$rebuild" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this machine already uses (first URIs line of its deb822
# sources, else its sources.list), so containers get the same packages.
debian_mirror() {
    local uri
    uri="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | head -n 1 || true)"
    if [ -z "$uri" ]; then
        uri="$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' \
            /etc/apt/sources.list 2>/dev/null || true)"
    fi
    if [ -z "$uri" ]; then
        echo "images-offline: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set MIRROR=http://..." >&2
        return 1
    fi
    printf '%s\n' "$uri"
}

build_base() {
    if have_image "$base_image"; then
        say "$base_image exists, kept"
        return
    fi
    command -v debootstrap >/dev/null || {
        echo "images-offline: debootstrap is missing; run: apt-get install -y debootstrap" >&2
        return 1
    }
    local mirror rootfs start
    mirror="${MIRROR:-$(debian_mirror)}"
    rootfs="$(mktemp -d /tmp/kit-rootfs.XXXXXX)"
    # shellcheck disable=SC2064  # expand now: the trap must remove this rootfs
    trap "rm -rf '$rootfs'" EXIT
    start=$SECONDS
    say "debootstrap bookworm from $mirror (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
        tail -n 20 "$rootfs.log" >&2
        return 1
    }
    rm -f "$rootfs.log"
    # Same sources as the host (main, updates, security) instead of
    # debootstrap's single line, so images get the host's package versions.
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        rm -f "$rootfs/etc/apt/sources.list"
        cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/"
    fi
    # What the official debian image does for containers: no services started
    # by package scripts, no recommends, no apt caches left in layers.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        >"$rootfs/etc/apt/apt.conf.d/90kit-no-recommends"
    printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\nAPT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
        >"$rootfs/etc/apt/apt.conf.d/docker-clean"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" --numeric-owner -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase bookworm $mirror" \
        - "$base_image" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
    say "$base_image imported ($((SECONDS - start)) s)"
}

build_image() {
    local image="$1" dir="$2" start
    if have_image "$image"; then
        say "$image exists, kept"
        return
    fi
    start=$SECONDS
    say "building $image from compose/offline/$dir"
    quiet docker build --quiet --build-arg "BASE_IMAGE=$base_image" -t "$image" \
        "$root/compose/offline/$dir" >/dev/null
    say "$image built ($((SECONDS - start)) s)"
}

build_wheelhouse() {
    local wheelhouse="$generated/wheelhouse" stamp
    stamp="$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)"
    if [ "$rebuild" != 1 ] && [ -f "$wheelhouse/.requirements.sha256" ] \
        && [ "$(cat "$wheelhouse/.requirements.sha256")" = "$stamp" ]; then
        say "wheelhouse for requirements.txt exists, kept"
        return
    fi
    say "building wheels of requirements.txt into compose/.generated/wheelhouse"
    rm -rf "$wheelhouse"
    mkdir -p "$wheelhouse"
    # requirements.txt is a complete lock with hashes (make lock) and the
    # image installs it with --no-deps, checking every hash. Environment
    # markers are dropped here on purpose: the host's Python (3.11.7) and
    # Debian's python3 in the image (3.11.2) disagree on some (redis needs
    # async-timeout below 3.11.3), so the wheelhouse holds every pinned Linux
    # line and pip in the image picks what its interpreter needs.
    sed -e '/^[[:space:]]*--hash/d' -e 's/[[:space:]]*\\$//' -e 's/[[:space:]]*#.*$//' \
        -e "/sys_platform == 'win32'/d" -e 's/[[:space:]]*;.*$//' -e '/^[[:space:]]*$/d' \
        "$root/requirements.txt" >"$wheelhouse/.requirements-all.txt"
    quiet "$python" -m pip wheel --quiet --no-deps -r "$wheelhouse/.requirements-all.txt" -w "$wheelhouse"
    echo "$stamp" >"$wheelhouse/.requirements.sha256"
}

write_env() {
    cat >"$generated/offline.env" <<ENV
# Written by compose/images-offline.sh: point compose/compose.yaml at the
# locally built images and make the app image install from the wheelhouse.
PYTHON_IMAGE=$python_image
NGINX_IMAGE=$nginx_image
REDIS_IMAGE=$redis_image
DEBIAN_IMAGE=$base_image
PIP_OFFLINE=1
ENV
    say "wrote compose/.generated/offline.env:"
    sed -n 's/^\([A-Z_]*=.*\)/  \1/p' "$generated/offline.env"
}

mkdir -p "$generated"
build_base
build_image "$python_image" python
build_image "$nginx_image" nginx
build_image "$redis_image" redis
build_wheelhouse
write_env
