#!/bin/sh
# install_conffile.sh SRC DIR NAME - a meson install script: install SRC as
# $DESTDIR/DIR/NAME (mode 0644) only when no such file exists yet, so that
# `make install` never overwrites settings an operator has edited. The file
# is not in meson's install log either, so `make uninstall` keeps it, as
# dpkg keeps a conffile on remove. In the Debian package the destination is
# empty and dh_installdeb makes the file a conffile (it is under /etc).
set -eu
src=$1
dir=${DESTDIR:-}$2
dest=$dir/$3
if [ -e "$dest" ]; then
	echo "Keeping $dest (exists; the example is in the doc directory)"
	exit 0
fi
install -d -m 0755 "$dir"
install -m 0644 "$src" "$dest"
echo "Installing $src to $dest"
