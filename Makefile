# sockseal: one non-recursive Makefile.  Out-of-tree objects in $(B).
#   make            build/libsockseal.so build/sockseal-keytool build/sockseal
#   make check      unit tests + integration tests (installs test deps if root)
#   make demo       install what is missing, build, run the sealed demo
#   make install PREFIX=/usr/local DESTDIR=   (make uninstall: the same files)
#   make deb        the Debian package build/sockseal_VERSION-REV_ARCH.deb
#                   (packaging/deb.sh; its own build in build/deb)
#   make memcheck   the unit tests under valgrind memcheck
#   make fuzz       libFuzzer targets in build/fuzz (clang); make fuzz-run
#                   FUZZ_SECONDS=N runs each for N seconds, and the
#                   differential readiness test (ready_diff) as long
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
CWARN    := -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter
CFLAGS   += $(CWARN) -fPIC -fvisibility=hidden -fno-strict-aliasing $(SANFLAGS)
CPPFLAGS += -D_GNU_SOURCE -Ipolicy -Ishim -Ikeytool -MMD -MP
LDFLAGS  += $(SANFLAGS)
LIBS      = -lsodium -ldl -lpthread

# The shim carries its own copy of libsodium when libsodium.a is there
# (libsodium-dev ships it): every program the shim is preloaded into then
# maps one object instead of two, which is most of what preloading costs a
# process start on a virtual machine (page faults; see bench/README.md).  The
# copy is private (shim.map exports only the hooks), so a program that links
# its own libsodium keeps it.  SODIUM=shared links libsodium.so instead, for
# packagers who want one libsodium to patch.
SODIUM   ?= static
SODIUM_A := $(if $(filter static,$(SODIUM)),$(shell $(CC) -print-file-name=libsodium.a))
ifneq ($(filter /%,$(SODIUM_A)),)
SHIM_LIBS = $(SODIUM_A) -Wl,--exclude-libs,ALL -ldl -lpthread
else
SHIM_LIBS = $(LIBS)
endif
# One read-only and one writable segment instead of four (fewer mappings and
# page faults at load), and no unreferenced sections.
SHIM_LDFLAGS = -Wl,-z,noseparate-code -Wl,--gc-sections

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
LAUNCH_SRC  := keytool/sockseal.c keytool/explain.c keytool/doctor.c \
               keytool/doctor_follow.c keytool/doctor_script.c \
               keytool/doctor_elf.c keytool/doctor_libs.c keytool/doctor_verdict.c \
               keytool/stats.c keytool/stats_scan.c keytool/stats_out.c \
               keytool/systemd.c keytool/systemd_dropin.c \
               keytool/systemd_check.c
KEYTOOL_SRC := $(filter-out $(LAUNCH_SRC),$(wildcard keytool/*.c))
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
        install uninstall deb
all: $(SHIM) $(KEYTOOL) $(LAUNCHER)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(QCC)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# What a build is (shim/version.h): the version, and the source it came
# from.  $(B)/build-id changes only when they do, so version.o alone is
# rebuilt then.
VERSION  := 0.15.0
BUILD_ID := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
.PHONY: FORCE
$(B)/build-id: FORCE
	@mkdir -p $(@D)
	@echo '$(VERSION) $(BUILD_ID)' | cmp -s - $@ 2>/dev/null || \
	    echo '$(VERSION) $(BUILD_ID)' > $@
$(B)/obj/shim/version.o: $(B)/build-id
$(B)/obj/shim/version.o: CPPFLAGS += -DSOCKSEAL_VERSION='"$(VERSION)"' \
    -DSOCKSEAL_BUILD='"$(BUILD_ID)"'

# SHIMDIR=DIR: the launcher looks for libsockseal.so in DIR before its
# places relative to itself (a package's fixed location; make deb sets it).
# $(B)/shimdir changes only when SHIMDIR does, as build-id above.
SHIMDIR ?=
$(B)/shimdir: FORCE
	@mkdir -p $(@D)
	@echo '$(SHIMDIR)' | cmp -s - $@ 2>/dev/null || echo '$(SHIMDIR)' > $@
$(LAUNCH_OBJ): $(B)/shimdir
$(LAUNCH_OBJ): CPPFLAGS += $(if $(SHIMDIR),-DSOCKSEAL_SHIMDIR='"$(SHIMDIR)"')

$(B)/libcore.a: $(CORE_OBJ)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(SHIM): $(HOOK_OBJ) $(B)/libcore.a shim/shim.map
	$(QLD)$(CC) -shared -Wl,--version-script=shim/shim.map -Wl,-z,defs \
	    -Wl,-z,nodelete $(SHIM_LDFLAGS) $(LDFLAGS) -o $@ $(HOOK_OBJ) \
	    $(B)/libcore.a $(SHIM_LIBS)

$(KEYTOOL): $(KEYTOOL_OBJ) $(B)/libcore.a
	$(QLD)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(LAUNCHER): $(LAUNCH_OBJ) $(B)/libcore.a
	$(QLD)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libcore.a
	@mkdir -p $(@D)
	$(QLD)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests of the launcher's pure parts link their object too.
$(B)/tests/test_doctor_script: $(B)/obj/keytool/doctor_script.o

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
I_COMP  := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
I_TMPF  := $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
COMP    := packaging/bash-completion/sockseal \
           packaging/bash-completion/sockseal-keytool
MAN1    := docs/man/sockseal.1 docs/man/sockseal-keytool.1
MAN5    := docs/man/sockseal-policy.5
DOCS    := policy/example.policy PROTOCOL.md

# The bash completion, and the tmpfiles.d entry that makes the statistics
# directory (/run/sockseal) at boot, as the Debian package has them.
install: $(SHIM) $(KEYTOOL) $(LAUNCHER) $(MAN1) $(MAN5) $(DOCS) $(COMP)
	install -d $(I_BIN) $(I_LIB) $(I_MAN)/man1 $(I_MAN)/man5 $(I_DOC) \
	    $(I_COMP) $(I_TMPF)
	install -m 0755 $(LAUNCHER) $(KEYTOOL) $(I_BIN)/
	install -m 0644 $(SHIM) $(I_LIB)/
	install -m 0644 $(MAN1) $(I_MAN)/man1/
	install -m 0644 $(MAN5) $(I_MAN)/man5/
	install -m 0644 $(DOCS) $(I_DOC)/
	install -m 0644 $(COMP) $(I_COMP)/
	install -m 0644 packaging/tmpfiles.conf $(I_TMPF)/sockseal.conf

uninstall:
	rm -f $(I_BIN)/sockseal $(I_BIN)/sockseal-keytool \
	    $(I_LIB)/libsockseal.so \
	    $(addprefix $(I_MAN)/man1/,$(notdir $(MAN1))) \
	    $(addprefix $(I_MAN)/man5/,$(notdir $(MAN5))) \
	    $(addprefix $(I_DOC)/,$(notdir $(DOCS))) \
	    $(addprefix $(I_COMP)/,$(notdir $(COMP))) $(I_TMPF)/sockseal.conf
	rmdir $(I_LIB) $(I_DOC) 2>/dev/null || true

# The Debian package (packaging/deb.sh says how): its own build in
# build/deb (SODIUM=shared, SHIMDIR=/usr/lib/TRIPLET/sockseal, the flags of
# dpkg-buildflags), the package in build/.
DEB_REVISION ?= 1
deb:
	@VERSION=$(VERSION) DEB_REVISION=$(DEB_REVISION) MAKE="$(MAKE)" \
	    bash packaging/deb.sh

-include $(patsubst %.o,%.d,$(CORE_OBJ) $(HOOK_OBJ) $(KEYTOOL_OBJ) $(LAUNCH_OBJ)) \
         $(patsubst tests/unit/%.c,$(B)/obj/tests/unit/%.d,$(UNIT_SRC))
.SECONDARY:

.PHONY: bench
bench: all
	@B=$(abspath $(B)) bash bench/run.sh

# The unit tests under valgrind: any memory error or definite leak fails.
.PHONY: memcheck
memcheck: $(UNIT_BIN)
	@test -z "$(SAN)" || { echo "memcheck: the plain build only, not SAN=$(SAN)"; exit 1; }
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
	    valgrind -q --tool=memcheck --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite $$t; done

# Fuzzing: libFuzzer targets built with clang into build/fuzz, with their
# own objects of the core (never the gcc ones).  tests/fuzz/fuzz_*.c say
# what each target feeds; tests/fuzz/run.sh runs them.
FZ           := build/fuzz
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -g -O1
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_policy fuzz_keyfile fuzz_handshake_initiator \
                fuzz_handshake_responder fuzz_identity_initiator \
                fuzz_identity_responder
FUZZ_BIN     := $(addprefix $(FZ)/,$(FUZZ_TARGETS))
FUZZ_CORE    := $(patsubst %.c,$(FZ)/obj/%.o,$(CORE_SRC))

.PHONY: fuzz fuzz-run
fuzz: $(FUZZ_BIN)

$(FZ)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(QCC)$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz $(CWARN) $(FUZZ_FLAGS) -c -o $@ $<

$(FZ)/libcore.a: $(FUZZ_CORE)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

# The policy target confines the key files it reads (fuzz_policy.c).
$(FZ)/fuzz_policy: FUZZ_LDEXTRA := -Wl,--wrap=keyfile_read -Wl,--wrap=policy_slurp
# The four session targets share one harness (tests/fuzz/fuzz_session_int.h
# says which file does what).
FUZZ_SESSION := fuzz_session fuzz_session_env fuzz_session_io \
                fuzz_session_seal fuzz_session_hs fuzz_session_ops \
                fuzz_session_seeds
$(FZ)/fuzz_handshake_initiator $(FZ)/fuzz_handshake_responder \
    $(FZ)/fuzz_identity_initiator $(FZ)/fuzz_identity_responder: \
    $(patsubst %,$(FZ)/obj/tests/fuzz/%.o,$(FUZZ_SESSION))

$(FZ)/fuzz_%: $(FZ)/obj/tests/fuzz/fuzz_%.o $(FZ)/libcore.a
	$(QLD)$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_LDEXTRA) -o $@ \
	    $(filter %.o,$^) $(filter %.a,$^) $(LIBS)

# ... then the differential readiness test (tests/fuzz/ready_diff.sh) with a
# random seed for as long, under the shim of $(B).
fuzz-run: fuzz all helpers
	@rc=0; bash tests/fuzz/run.sh $(FZ) $(FUZZ_SECONDS) $(FUZZ_TARGETS) || rc=1; \
	    bash tests/fuzz/ready_diff.sh $(abspath $(B)) $(FUZZ_SECONDS) $(FZ) || rc=1; \
	    exit $$rc

-include $(patsubst %.o,%.d,$(FUZZ_CORE)) $(wildcard $(FZ)/obj/tests/fuzz/*.d)
