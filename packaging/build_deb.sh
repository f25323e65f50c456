#!/bin/bash
# Builds the portserver .deb with dpkg-deb, for //packaging:deb.
#
#   build_deb.sh OUT VERSION ARCH DEST=SRC...
#
# Each DEST=SRC puts file SRC at DEST in the package ("DEBIAN/..." for the
# control files). By DEST:
#   usr/bin/*       stripped, mode 0755
#   *.gz            @VERSION@ replaced, then compressed (gzip -9n), unless
#                   SRC is compressed already
#   DEBIAN/*        @VERSION@ and @ARCH@ replaced; the maintainer scripts
#                   get mode 0755
# DEBIAN/control also gets Installed-Size and Depends, the latter from
# dpkg-shlibdeps on the binaries (the dynamically linked ones need Abseil
# and libstdc++). md5sums is computed. Files are owned by root and dated
# SOURCE_DATE_EPOCH (the changelog's date), so the package is reproducible.
set -euo pipefail

out=$1 version=$2 arch=$3
shift 3

host_arch=$(dpkg --print-architecture)
if [ "$host_arch" != "$arch" ]; then
  echo "build_deb.sh: the package is built for $arch; this host is $host_arch" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/DEBIAN"

subst() {  # subst SRC DEST: copy with @VERSION@ and @ARCH@ replaced
  sed -e "s/@VERSION@/$version/g" -e "s/@ARCH@/$arch/g" "$1" >"$2"
}

binaries=()
for pair in "$@"; do
  dest=${pair%%=*}
  src=${pair#*=}
  mkdir -p "$(dirname "$root/$dest")"
  case "$dest" in
    usr/bin/*)
      cp "$src" "$root/$dest"
      chmod 0755 "$root/$dest"
      strip --strip-unneeded --remove-section=.comment --remove-section=.note \
        "$root/$dest"
      binaries+=("$root/$dest")
      ;;
    *.gz)
      if gzip -t "$src" 2>/dev/null; then
        cp "$src" "$root/$dest"
      else
        subst "$src" "$root/${dest%.gz}"
        gzip -9n "$root/${dest%.gz}"
      fi
      ;;
    DEBIAN/*)
      subst "$src" "$root/$dest"
      ;;
    *)
      cp "$src" "$root/$dest"
      ;;
  esac
done

find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -path '*/usr/bin/*' -exec chmod 0644 {} +
for script in preinst postinst prerm postrm; do
  [ -f "$root/DEBIAN/$script" ] && chmod 0755 "$root/DEBIAN/$script"
done

# Depends: what the binaries link against, as Debian's own packages declare
# it (dpkg-shlibdeps needs a debian/control to run in).
mkdir -p "$work/src/debian"
printf 'Source: portserver\n\nPackage: portserver\nArchitecture: any\n' \
  >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "${binaries[@]}" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
depends=${shlibs:-libc6}
installed_size=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -i -e "s/@DEPENDS@/$depends/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  "$root/DEBIAN/control"

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort |
  xargs -r md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums"

# Reproducible: every file dated by the changelog's top entry.
changelog=$(find "$root/usr/share/doc" -name 'changelog*.gz' | head -1)
if [ -n "$changelog" ]; then
  date_line=$(zcat "$changelog" | sed -n 's/^ -- .*>  //p' | head -1)
  export SOURCE_DATE_EPOCH=$(date -d "$date_line" +%s)
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
fi

dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
