# sockseal: one non-recursive Makefile.  Out-of-tree objects in $(B).
#   make            build/libsockseal.so build/sockseal-keytool build/sockseal
#   make check      unit tests + integration tests (installs test deps if root)
#   make demo       install what is missing, build, run the sealed demo
#   make install PREFIX=/usr/local DESTDIR=   (make uninstall: the same files)
#   make clean
#   SAN=asan|tsan   sanitizer build in build/asan or build/tsan; the runtime is
#                   put first in LD_PRELOAD by the tests ($(PRELOAD)).
#   V=1             show the commands

ifeq ($(SAN),asan)
B        ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
SANLIB   := asan
else ifeq ($(SAN),tsan)
B        ?= build/tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
SANLIB   := tsan
else
B        ?= build
endif

CC       ?= cc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter -fPIC -fvisibility=hidden \
            -fno-strict-aliasing $(SANFLAGS)
CPPFLAGS += -D_GNU_SOURCE -Ipolicy -Ishim -Ikeytool -MMD -MP
LDFLAGS  += $(SANFLAGS)
LIBS      = -lsodium -ldl -lpthread

ifneq ($(V),1)
Q  = @
QCC = @echo "  CC      $@";
QLD = @echo "  LD      $@";
endif

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

# The shim: hook_*.c export libc names; everything else is the core, which
# unit tests link without the hooks.
HOOK_SRC    := $(wildcard shim/hook_*.c)
CORE_SRC    := $(filter-out $(HOOK_SRC),$(wildcard shim/*.c)) $(wildcard policy/*.c)
KEYTOOL_SRC := $(filter-out keytool/sockseal.c,$(wildcard keytool/*.c))
LAUNCH_SRC  := keytool/sockseal.c
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
HELPER_SRC  := $(wildcard tests/helpers/*.c)

HOOK_OBJ    := $(call obj,$(HOOK_SRC))
CORE_OBJ    := $(call obj,$(CORE_SRC))
KEYTOOL_OBJ := $(call obj,$(KEYTOOL_SRC))
LAUNCH_OBJ  := $(call obj,$(LAUNCH_SRC))
UNIT_BIN    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
HELPER_BIN  := $(patsubst tests/helpers/%.c,$(B)/tests/%,$(HELPER_SRC))

SHIM     := $(B)/libsockseal.so
KEYTOOL  := $(B)/sockseal-keytool
LAUNCHER := $(B)/sockseal

ifdef SANLIB
SANRT := $(shell $(CC) -print-file-name=lib$(SANLIB).so)
endif
PRELOAD := $(strip $(SANRT) $(abspath $(SHIM)))

.PHONY: all check unit integration demo clean install-deps helpers \
        install uninstall
all: $(SHIM) $(KEYTOOL) $(LAUNCHER)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(QCC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libcore.a: $(CORE_OBJ)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(SHIM): $(HOOK_OBJ) $(B)/libcore.a shim/shim.map
	$(QLD)$(CC) -shared -Wl,--version-script=shim/shim.map -Wl,-z,defs \
	    -Wl,-z,nodelete $(LDFLAGS) -o $@ $(HOOK_OBJ) $(B)/libcore.a $(LIBS)

$(KEYTOOL): $(KEYTOOL_OBJ) $(B)/libcore.a
	$(QLD)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(LAUNCHER): $(LAUNCH_OBJ) $(B)/libcore.a
	$(QLD)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libcore.a
	@mkdir -p $(@D)
	$(QLD)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Helper programs never link the shim or its core.
$(B)/tests/%: tests/helpers/%.c
	@mkdir -p $(@D)
	$(QLD)$(CC) -O2 -g -Wall -Wextra -D_GNU_SOURCE -o $@ $< -lpthread

helpers: $(HELPER_BIN)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# Integration scenarios: tests/integration/NN-*.sh, each a shunit2 script;
# T=PATTERN runs only the scripts whose name matches (e.g. T='4[24]-').
integration: all helpers
	@B=$(abspath $(B)) PRELOAD="$(PRELOAD)" SAN="$(SAN)" \
	    bash tests/run-integration.sh $(T)

install-deps:
	@bash tests/install-deps.sh

check: install-deps all helpers
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory integration

demo:
	@bash tests/demo.sh

clean:
	rm -rf build

# Installed layout.  The launcher looks for the shim in ../lib/sockseal/ from
# its own directory, so bin/ and lib/sockseal/ stay siblings under PREFIX.
# install uses the built files as they are (it rebuilds only what is stale).
PREFIX  ?= /usr/local
DESTDIR ?=
I_BIN   := $(DESTDIR)$(PREFIX)/bin
I_LIB   := $(DESTDIR)$(PREFIX)/lib/sockseal
I_MAN   := $(DESTDIR)$(PREFIX)/share/man
I_DOC   := $(DESTDIR)$(PREFIX)/share/doc/sockseal
MAN1    := docs/man/sockseal.1 docs/man/sockseal-keytool.1
MAN5    := docs/man/sockseal-policy.5
DOCS    := policy/example.policy PROTOCOL.md

install: $(SHIM) $(KEYTOOL) $(LAUNCHER) $(MAN1) $(MAN5) $(DOCS)
	install -d $(I_BIN) $(I_LIB) $(I_MAN)/man1 $(I_MAN)/man5 $(I_DOC)
	install -m 0755 $(LAUNCHER) $(KEYTOOL) $(I_BIN)/
	install -m 0644 $(SHIM) $(I_LIB)/
	install -m 0644 $(MAN1) $(I_MAN)/man1/
	install -m 0644 $(MAN5) $(I_MAN)/man5/
	install -m 0644 $(DOCS) $(I_DOC)/

uninstall:
	rm -f $(I_BIN)/sockseal $(I_BIN)/sockseal-keytool \
	    $(I_LIB)/libsockseal.so \
	    $(addprefix $(I_MAN)/man1/,$(notdir $(MAN1))) \
	    $(addprefix $(I_MAN)/man5/,$(notdir $(MAN5))) \
	    $(addprefix $(I_DOC)/,$(notdir $(DOCS)))
	rmdir $(I_LIB) $(I_DOC) 2>/dev/null || true

-include $(patsubst %.o,%.d,$(CORE_OBJ) $(HOOK_OBJ) $(KEYTOOL_OBJ) $(LAUNCH_OBJ)) \
         $(patsubst tests/unit/%.c,$(B)/obj/tests/unit/%.d,$(UNIT_SRC))
.SECONDARY:

.PHONY: bench
bench: all
	@B=$(abspath $(B)) bash bench/run.sh
