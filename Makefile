# jqrun — a job runner in C.  `make` builds build/jqrun; see README.md.
#
# Every src/*.c is part of the binary; src/main.c alone holds main(), so the
# test programs link everything else.  Redis scripts in lua/*.lua are embedded
# into build/scripts.c by tools/embed.sh at build time.

PKGS     := lua5.4 hiredis libmicrohttpd libcurl libcrypto jansson lua5.4-cjson
DEBS     := build-essential pkg-config liblua5.4-dev libhiredis-dev \
            libmicrohttpd-dev libcurl4-openssl-dev libssl-dev libjansson-dev \
            lua-cjson-dev redis-server redis-tools curl jq valgrind \
            openssl nodejs prometheus
# (the tests' own tools: openssl and node verify webhook signatures,
#  prometheus brings promtool to check GET /metrics)
CC       ?= cc
WARN     := -Wall -Wextra -Wformat=2 -Wshadow -Wwrite-strings \
            -Wstrict-prototypes -Wmissing-prototypes -Wno-missing-field-initializers
WERROR   ?= 1
ifeq ($(WERROR),1)
WARN     += -Werror
endif
OPT      ?= -O2 -g
SAN      ?=
B        ?= build
CFLAGS   += -std=gnu11 $(OPT) $(WARN) $(SAN) -pthread -Isrc -I$(B) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -lm
LDFLAGS  += $(SAN)

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=$(B)/%.o) $(B)/scripts.o
LIBOBJS  := $(filter-out $(B)/main.o,$(OBJS))
HDRS     := $(wildcard src/*.h)
SCRIPTS  := $(wildcard lua/*.lua)
UNITS    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/*.c))

.PHONY: all deps test units sanitize run bench clean fuzz test-reliability valgrind

all: $(B)/jqrun

$(B)/jqrun: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/%.o: src/%.c $(HDRS) | $(B)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/scripts.c: $(SCRIPTS) $(wildcard lua/lib/*.lua) tools/embed.sh | $(B)
	sh tools/embed.sh $(SCRIPTS) > $@.tmp && mv $@.tmp $@

$(B)/scripts.o: $(B)/scripts.c src/scripts.h
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/tests/%: tests/unit/%.c tests/unit/ut.h $(LIBOBJS) | $(B)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

$(B)/bench: tests/bench/bench.c $(LIBOBJS) | $(B)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

$(B):
	@mkdir -p $(B)

# deps installs the Debian packages jqrun needs, when some are missing.
deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing packages; run: sudo apt-get update && sudo apt-get install -y" $$missing; exit 1; \
	  fi; \
	fi

units: $(UNITS)

test: deps
	$(MAKE) all units
	B=$(B) sh tests/run.sh

# sanitize: the same suite, built with ASan+UBSan into build-san/.
sanitize: deps
	$(MAKE) B=build-san OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all units
	B=build-san ASAN_OPTIONS=detect_leaks=1 sh tests/run.sh

# run and bench re-invoke make so pkg-config flags are read after deps.
run: deps
	@$(MAKE) --no-print-directory all
	$(B)/jqrun -c examples/jqrun.conf run

bench: deps
	@$(MAKE) --no-print-directory all $(B)/bench
	B=$(B) sh tests/bench/run.sh

# test-reliability: the long crash/restart/hostile-input scenarios (the
# short form runs inside `make test`); see RELIABILITY.md.
test-reliability: deps
	@$(MAKE) --no-print-directory all
	B=$(B) RELIABILITY=long bash tests/reliability/run.sh

# fuzz: libFuzzer targets (clang), each for a bounded time.
fuzz: deps
	@$(MAKE) --no-print-directory all
	bash tests/fuzz/run.sh

# valgrind: the unit tests under valgrind, failing on any leak or error.
valgrind: deps
	@$(MAKE) --no-print-directory all units
	@for t in $(UNITS); do \
	  valgrind -q --leak-check=full --error-exitcode=1 $$t >/dev/null || { echo "valgrind: $$t"; exit 1; }; \
	  echo "valgrind ok: $$t"; done

clean:
	rm -rf build build-san build-fuzz
