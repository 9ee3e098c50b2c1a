#!/usr/bin/env bash
# Proves (check) or rebuilds (write) each vendored crate as the crate published
# on crates.io plus the patch files in vendor/patches/<name>/, applied in order.
#
#   vendor/sync.sh check    # fails, showing the difference, if any tree differs
#   vendor/sync.sh write    # replaces vendor/<name>/ with crate + patches
#
# vendor/crates.tsv lists name, version and the sha256 of the published .crate
# (the checksum crates.io's index gives); a download that does not match fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-check}"
case "$mode" in check | write) ;; *) echo "usage: $0 check|write" >&2; exit 2 ;; esac

cache="$root/target/vendor-crates"
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The published .crate: cargo's own download cache if it has it, else crates.io.
fetch_crate() {
    local name="$1" version="$2" sha="$3" file="$cache/$1-$2.crate"
    if [ ! -f "$file" ]; then
        local cached
        cached="$(ls "$HOME"/.cargo/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n 1 || true)"
        if [ -n "$cached" ]; then
            cp "$cached" "$file.part"
        else
            curl -sSfL --retry 3 -o "$file.part" "https://static.crates.io/crates/$name/$name-$version.crate" ||
                { echo "vendor: cannot download $name $version from crates.io" >&2; return 1; }
        fi
        mv "$file.part" "$file"
    fi
    if [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]; then
        rm -f "$file"
        echo "vendor: $name-$version.crate does not have the sha256 in vendor/crates.tsv" >&2
        return 1
    fi
    echo "$file"
}

status=0
while IFS=$'\t' read -r name version sha; do
    [ -n "$name" ] || continue
    crate="$(fetch_crate "$name" "$version" "$sha")"
    tar -xzf "$crate" -C "$work"
    expected="$work/$name-$version"
    for p in "$root/vendor/patches/$name"/*.patch; do
        [ -e "$p" ] || continue
        patch -s -p1 --fuzz=0 --no-backup-if-mismatch -d "$expected" <"$p" ||
            { echo "vendor: $(basename "$p") does not apply to $name $version" >&2; exit 1; }
    done
    if [ "$mode" = write ]; then
        rm -rf "${root:?}/vendor/$name"
        cp -a "$expected" "$root/vendor/$name"
        echo "vendor: wrote vendor/$name ($name $version + $(ls "$root/vendor/patches/$name" | wc -l) patches)"
    elif diff -r "$expected" "$root/vendor/$name" >"$work/$name.diff"; then
        echo "vendor: vendor/$name is $name $version + $(ls "$root/vendor/patches/$name" | wc -l) patches"
    else
        echo "vendor: vendor/$name differs from $name $version + its patches:" >&2
        head -n 200 "$work/$name.diff" >&2
        status=1
    fi
done <"$root/vendor/crates.tsv"
exit $status
