# Thin wrapper for the README's two commands; the build itself is meson.
#   make run    install what is missing, build, start ASR :5001 and TTS :5002
#   make test   install what is missing, build, run unit + integration tests
#   make bench  run the benchmark suite (writes docs/PERFORMANCE.md)

BUILD ?= build
# Debian packages the server needs to build and run
DEPS := gcc pkg-config meson ninja-build libmicrohttpd-dev libjansson-dev \
        libavformat-dev libavcodec-dev libswresample-dev libavutil-dev \
        libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us \
        libespeak-ng-dev espeak-ng-data libcmocka-dev libcurl4-openssl-dev
# ... and what the tests drive it with (ffmpeg makes test audio, promtool
# checks /metrics, pocketsphinx_continuous is the WER baseline)
TEST_DEPS := ffmpeg pocketsphinx pocketsphinx-testdata prometheus python3 curl
BENCH_DEPS := wrk nginx-light espeak-ng

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test unit integration bench deps test-deps bench-deps clean

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

test-deps: deps
	$(call install,$(TEST_DEPS))

bench-deps: test-deps
	$(call install,$(BENCH_DEPS))

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/voicestack serve

test: test-deps build
	./tests/run_all.sh $(BUILD)

bench: bench-deps build
	./bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
