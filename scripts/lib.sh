# scripts/lib.sh: what the demo and the test command share: packages, a scratch copy, the build.

# Clusters are created in UTF-8 whatever the caller's environment: the tests count
# characters of multi-byte names, and initdb takes its encoding from the locale.
export LANG=C.UTF-8 LC_ALL=C.UTF-8

# install_missing PKG...: installs the Debian packages that are not installed yet.
install_missing() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# copy_tree TREE DIR: copies the sources of TREE into the directory DIR, without git's
# files and without what a build or a test run left in TREE (objects, test output, a
# package built in place).
copy_tree() {
    tar -C "$1" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
        --exclude=results --exclude=output_iso --exclude=tmp_check --exclude=log \
        --exclude=debian/.debhelper --exclude=debian/files --exclude='debian/*.substvars' \
        --exclude='debian/*debhelper*' --exclude='debian/postgresql-*-dms-lifecycle' \
        --exclude=debian/tmp -cf - . |
        tar -C "$2" -xf -
}

# scratch_build TREE [MAKE-ARGUMENT...]: copies TREE into a new directory the postgres user
# owns, builds (with the arguments: the test command adds COPT=-Werror) and installs the
# extension from it, and prints the copy's path.  initdb refuses to run as root, so
# everything that starts a cluster runs as postgres in this copy.
scratch_build() {
    local tree=$1 work
    shift
    work=$(mktemp -d /tmp/dms_lifecycle.XXXXXX)
    copy_tree "$tree" "$work"
    chown -R postgres: "$work"
    chmod 755 "$work"
    # (errexit does not reach into the command substitution that calls this)
    runuser -u postgres -- make -C "$work" -s "$@" >&2 || { echo "== the build failed" >&2; return 1; }
    make -C "$work" -s install >&2 || { echo "== the install failed" >&2; return 1; }
    echo "$work"
}

# require_root: the commands install packages, so they run as root.
require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "run this as root: it installs packages and the extension" >&2
        exit 1
    fi
}
