# Shared by scripts/run-tests and scripts/run-odoo (sourced, not run).

# Start the local PostgreSQL cluster when it is not running, and give the
# current Unix user a superuser role when running as root on a fresh machine.
ensure_postgresql() {
    if ! pg_isready -q 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
        local version
        version=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1}')
        pg_ctlcluster "${version:-15}" main start || true
        for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
    fi
    if [ "$(id -u)" = 0 ] && ! psql -d postgres -Atc "select 1" >/dev/null 2>&1; then
        su postgres -c "createuser --superuser root" >/dev/null 2>&1 || true
    fi
    pg_isready
}

# Odoo finds a module by its folder name, and the repository root is the
# addon: expose it as <dir>/email_account.
link_addon() {  # repository root, folder to hold the link
    mkdir -p "$2"
    ln -sfn "$1" "$2/email_account"
}

# A .po/.pot file without its header entry (everything up to the first empty
# line), whose dates change on every export.
without_header() {
    sed '1,/^$/d' "$1"
}
