# Sourced by the image build and the podman tests: podman from Debian, set
# up for this project's own runs only (CONTAINERS_CONF points at
# deploy/containers.conf; no system file is changed). Installs podman,
# buildah and debootstrap when missing (Debian; as root or with sudo).
_deploy_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_missing=()
for _p in podman buildah debootstrap runc catatonit uidmap containernetworking-plugins; do
  dpkg-query -W -f='${Status}' "$_p" 2>/dev/null | grep -q "install ok installed" || _missing+=("$_p")
done
if [ ${#_missing[@]} -gt 0 ]; then
  _sudo=""; [ "$(id -u)" -ne 0 ] && _sudo="sudo"
  echo "podman-env: installing ${_missing[*]}"
  DEBIAN_FRONTEND=noninteractive $_sudo apt-get install -y --no-install-recommends "${_missing[@]}" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive $_sudo apt-get update >/dev/null &&
         DEBIAN_FRONTEND=noninteractive $_sudo apt-get install -y --no-install-recommends "${_missing[@]}" >/dev/null; }
fi
export CONTAINERS_CONF="$_deploy_dir/containers.conf"
# The image the scripts build and test unless told another:
# localhost/trickle:<the project's version in CMakeLists.txt>.
TRICKLE_VERSION="$(sed -n 's/^project(trickle VERSION \([0-9.]*\).*/\1/p' "$_deploy_dir/../CMakeLists.txt")"
TRICKLE_DEFAULT_IMAGE="localhost/trickle:$TRICKLE_VERSION"
unset _deploy_dir _missing _p _sudo
