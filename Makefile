# Thin wrapper for the README's two commands; the build itself is meson.
#   make run    install what is missing, build, start ASR :5001 and TTS :5002
#   make test   install what is missing, build (normal + ASan/UBSan), run unit,
#               integration (twice: normal build, sanitizer build) and a short
#               libFuzzer run of every fuzz driver (tests/run_all.sh)
#   make bench  run the benchmark suite (writes docs/PERFORMANCE.md and the
#               measured tables of docs/MODELS.md)
#   make install   build and install under PREFIX (default /usr/local), into
#               DESTDIR if given (meson install; layout: docs/DEPLOY.md)
#   make uninstall remove what make install installed (not the settings file)
#   make deb    build the Debian package into dist/ (debian/, tools/make_deb.sh)
#   make tune-asr  rerun the sweep behind pocketsphinx-accurate's settings
#               (bench/tune_asr.py, ~1 h on 2 cores; docs/MODELS.md)

BUILD ?= build
# the same sources with ASan + UBSan; -fno-sanitize-recover makes every UBSan
# finding fatal, like ASan's; b_lundef=false because sanitizer runtimes
# resolve symbols at load time
BUILD_ASAN ?= build-asan
ASAN_SETUP := -Db_sanitize=address,undefined -Db_lundef=false -Dtests=disabled \
              -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all
# Debian packages the server needs to build and run (help2man writes the
# man page voicestack-loadtest.1 from its --help)
DEPS := gcc pkg-config meson ninja-build libmicrohttpd-dev libjansson-dev \
        libavformat-dev libavcodec-dev libswresample-dev libavutil-dev \
        libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us \
        libespeak-ng-dev espeak-ng-data flite1-dev libcmocka-dev libcurl4-openssl-dev \
        nettle-dev libwslay-dev help2man libsystemd-dev
# ... and what the tests drive it with (ffmpeg makes test audio, promtool
# checks /metrics, pocketsphinx_continuous is the WER baseline, nginx runs
# deploy/nginx-voicestack.conf in test_nginx.py). Sanitizers: gcc's ASan and
# UBSan runtimes (libasan8, libubsan1) for build-asan; clang with
# libclang-rt-14-dev (libFuzzer + clang's ASan/UBSan runtimes, a Recommends
# of clang that --no-install-recommends would skip) for the fuzz drivers;
# clang-format checks the house format (tests/run_all.sh); chromium (headless,
# fake microphone) drives the page in test_page.py. test_package.py builds
# and checks the Debian package (dpkg-dev, debhelper, fakeroot, lintian, git:
# make deb) and renders the man pages (groff-base, man-db). haproxy runs
# deploy/haproxy-voicestack.cfg in front of three instances in test_balancers.py.
TEST_DEPS := ffmpeg pocketsphinx pocketsphinx-testdata prometheus python3 curl nginx-light \
             libasan8 libubsan1 clang libclang-rt-14-dev clang-format chromium \
             dpkg-dev debhelper fakeroot lintian git groff-base man-db haproxy
# test_deploy_obs.py: yamllint lints deploy/kubernetes/, python3-yaml reads it
# (Debian's kubernetes-client cannot validate offline: it asks a server)
TEST_DEPS += yamllint python3-yaml
# test_systemd.py: systemd-analyze checks the units offline (verify, security)
TEST_DEPS += systemd
# what bench/run.sh drives (some also in TEST_DEPS; listed so bench-deps states it all)
BENCH_DEPS := wrk espeak-ng nginx-light ffmpeg curl pocketsphinx-testdata python3
# what bench/tune_asr.py needs (and npm, from test-deps: it fetches the one
# held-out clip Debian has not)
TUNE_DEPS := pocketsphinx pocketsphinx-testdata python3

# make install: meson's prefix and its staging directory (DESTDIR)
PREFIX ?= /usr/local
DESTDIR ?=
# make deb: what dpkg-buildpackage, debhelper and lintian need (debian/control
# Build-Depends adds the DEPS), and where the package goes
DEB_DEPS := dpkg-dev debhelper fakeroot lintian help2man git
DIST ?= dist

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build build-asan run test unit integration bench tune-asr deps test-deps bench-deps \
        tune-deps clean install uninstall deb

all: build

# apt-get only when something is missing, so repeated runs stay fast and offline
define install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install,$(DEPS))

# The official OpenAI Node SDK (tests/sdk, pinned in package-lock.json) is a
# client the tests drive. Node.js comes with the machine image; where it is
# missing, Debian's nodejs and npm are installed. npm ci installs exactly the
# locked version, only when it is not there yet.
test-deps: deps
	$(call install,$(TEST_DEPS))
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing: nodejs npm"; $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; }
	@[ -f tests/sdk/node_modules/openai/package.json ] || \
	  (cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)

bench-deps: test-deps
	$(call install,$(BENCH_DEPS))

tune-deps: test-deps
	$(call install,$(TUNE_DEPS))

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) $(ASAN_SETUP)

build-asan: test-deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

run: build
	./$(BUILD)/voicestack serve

test: test-deps build build-asan
	./tests/run_all.sh $(BUILD) $(BUILD_ASAN)

bench: bench-deps build
	./bench/run.sh $(BUILD)

tune-asr: tune-deps build
	python3 bench/tune_asr.py --bin $(BUILD)/voicestack

# meson derives the other directories from the prefix (with /usr:
# sysconfdir /etc); a changed PREFIX rebuilds only what names the paths
install: deps $(BUILD)/build.ninja
	meson configure $(BUILD) --prefix=$(PREFIX)
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir "$(DESTDIR)")

# meson's uninstall removes what its install log lists (the settings file in
# sysconfdir is not in it: install_conffile.sh keeps an operator's edits)
uninstall:
	ninja -C $(BUILD) uninstall

deb: deps
	$(call install,$(DEB_DEPS))
	tools/make_deb.sh $(DIST)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-deb
