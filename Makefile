# ember: build, test, run, benchmark. `make help` lists the targets.
CC ?= gcc
BUILD ?= build
PKG_CONFIG ?= pkg-config

WARN := -Wall -Wextra -Wshadow -Wcast-qual -Werror
# clang builds (fuzzing, sanitizers): struct kvm_msrs and friends end in a
# flexible array and are embedded with their entries right after them.
ifneq ($(findstring clang,$(CC)),)
WARN += -Wno-gnu-variable-sized-type-not-at-end
endif
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -MMD -MP -Ivmm -fstack-protector-strong $(EXTRA_CFLAGS)
# The libraries ember links (libfdt ships no pkg-config file; jansson's
# and http-parser's are plain -l). build/ember and build/ember-jailer link
# them statically with glibc (STATIC_LDFLAGS): one file, no dynamic loader,
# nothing to copy into a jail. The sanitizer and fuzz builds (clang, ASan)
# and the unit tests link dynamically, except liburing: Debian's
# liburing.so.2 (2.3) does not export io_uring_register_restrictions/
# io_uring_enable_rings; liburing.a has them.
EMBER_LIBS := -lhttp_parser -ljansson -lseccomp -lfdt -lz -lpthread
LDLIBS += -Wl,-Bstatic -luring -Wl,-Bdynamic $(EMBER_LIBS)
ifneq ($(findstring sanitize,$(EXTRA_CFLAGS)),)
STATIC_LDFLAGS ?=
STATIC_LDLIBS ?= $(LDLIBS)
else
STATIC_LDFLAGS ?= -static
STATIC_LDLIBS ?= -luring $(EMBER_LIBS)
endif

VMM_SRCS := $(wildcard vmm/*.c vmm/arch/x86_64/*.c vmm/devices/legacy/*.c vmm/devices/virtio/*.c \
	vmm/devices/virtio/block/*.c vmm/devices/virtio/net/*.c vmm/devices/virtio/vsock/*.c \
	vmm/devices/virtio/rng/*.c vmm/devices/virtio/balloon/*.c vmm/acpi/*.c vmm/mmds/*.c vmm/snapshot/*.c api/*.c) vmm/seccomp/policy.c vmm/seccomp/seccomp.c
VMM_OBJS := $(VMM_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/seccomp_filters.o $(BUILD)/lwip/liblwip.a
# Everything but main(), for unit tests to link against.
VMM_LIB_OBJS := $(filter-out $(BUILD)/vmm/main.o,$(VMM_OBJS))

# Test guests: freestanding, static, no libc. The kit is shared by all.
# Recursive (=), like every variable below that asks the compiler, pkg-config or
# the file system: it is expanded when a recipe runs, after `make setup` has
# installed them, never when the Makefile is parsed (see Set-up in the README).
GUEST_CFLAGS = -std=gnu11 -O2 -g $(WARN) -MMD -MP -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables -fcf-protection=none \
	-nostdinc -isystem guest/kit/include -isystem $(shell $(CC) -print-file-name=include) -isystem $(BUILD)/guest/fdt-include -Iguest/kit
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,max-page-size=4096
GUEST_KIT_OBJS := $(addprefix $(BUILD)/guest/kit/,pvh_entry.o kit.o libc.o)
GUEST_NAMES := hello smp crash ring3 blk net vsock count acpi rng cpuid balloon
GUESTS := $(GUEST_NAMES:%=$(BUILD)/guest/%.elf) $(BUILD)/guest/bzimage-check.bzImage $(BUILD)/guest/acpi.bzImage
# Function images (guest/examples/, the function runtime in guest/kit/fn.h).
FN_EXAMPLES := echo sha256 scribble crash loop big
GUESTS += $(FN_EXAMPLES:%=$(BUILD)/guest/examples/%.elf)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

PYTEST := /usr/bin/python3 -m pytest

.PHONY: all setup run test test-jailed unit integration bench fmt fmt-check clean help guests kernel rootfs \
	fuzz fuzz-build fuzz-smoke test-asan asan-build soak
all: $(BUILD)/ember $(BUILD)/ember-jailer $(BUILD)/emberctl $(BUILD)/ember-fn guests

$(BUILD)/emberctl: api/emberctl
	@mkdir -p $(dir $@)
	cp $< $@

help:
	@echo "make            build build/ember and the test guests"
	@echo "make run        set up the machine, build, boot the bundled hello guest"
	@echo "make test       set up the machine, build, run every test (what CI runs)"
	@echo "make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 600) each"
	@echo "make test-asan  the integration suite against ember built with ASan+UBSan+LSan"
	@echo "make soak       boot/teardown cycles and mixed API requests; SOAK_ARGS=--full for the large run"
	@echo "make bench      benchmarks: boot vs QEMU -M microvm, block vs fio, API, net, vsock"
	@echo "make fmt        format the C sources; make fmt-check checks them"

# Targets that set up the machine build in a second make started after
# scripts/setup.sh, never as setup's siblings: with -j a sibling could start
# before the packages are in, and this make's directory cache predates them.
setup:
	@scripts/setup.sh

$(BUILD)/ember: $(VMM_OBJS)
	$(CC) $(CFLAGS) $(STATIC_LDFLAGS) -o $@ $^ $(STATIC_LDLIBS)

# ember-fn: runs function images, one restored VM per request; a client of
# ember's API and vsock sockets only (api/fn/fn.h), so it links none of the VMM.
FN_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard api/fn/*.c))
$(BUILD)/ember-fn: $(FN_OBJS)
	$(CC) $(CFLAGS) $(STATIC_LDFLAGS) -o $@ $^ -lpthread

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_MMDS_CFLAGS) -c -o $@ $<

# lwIP, the MMDS network stack: Debian's source (scripts/fetch-lwip.sh, run
# by make setup) compiled with ember's lwipopts.h (vmm/mmds/lwip/) into one
# archive. Recursive, like LIBFDT_A: the cache is looked up when a recipe
# runs, never when the Makefile is parsed.
LWIP_CACHE = $(or $(EMBER_CACHE),/var/cache/ember)
LWIP_DIR = $(or $(patsubst %/src/core/tcp.c,%,$(firstword $(wildcard $(LWIP_CACHE)/lwip-2.1.3*/src/core/tcp.c))),\
	$(error lwIP source not found in $(LWIP_CACHE): run make setup))
LWIP_CORE := core/init.c core/def.c core/inet_chksum.c core/ip.c core/mem.c core/memp.c \
	core/netif.c core/pbuf.c core/tcp.c core/tcp_in.c core/tcp_out.c core/timeouts.c \
	core/ipv4/ip4.c core/ipv4/ip4_addr.c core/ipv4/etharp.c core/ipv4/icmp.c netif/ethernet.c
LWIP_CFLAGS = -Ivmm/mmds/lwip -I$(LWIP_DIR)/src/include
$(BUILD)/lwip/liblwip.a: vmm/mmds/lwip/lwipopts.h vmm/mmds/lwip/arch/cc.h
	@mkdir -p $(dir $@)
	@rm -f $@
	@set -e; for f in $(LWIP_CORE); do o=$(dir $@)$$(echo $$f | tr / _ | sed 's/\.c$$/.o/'); \
		echo "  CC lwip/$$f"; \
		$(CC) $(filter-out -Werror -Wshadow -Wcast-qual -Wextra,$(CFLAGS)) $(LWIP_CFLAGS) -c -o $$o $(LWIP_DIR)/src/$$f; \
		ar rcs $@ $$o; done
$(BUILD)/vmm/mmds/%.o: EXTRA_MMDS_CFLAGS = $(LWIP_CFLAGS)

# --- guests ---------------------------------------------------------------
guests: $(GUESTS) $(BUILD)/guest/ring3-checksum-host

$(BUILD)/guest/kit/%.o: guest/kit/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<
$(BUILD)/guest/kit/%.o: guest/kit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<
$(BUILD)/guest/tests/%.o: guest/tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<
$(BUILD)/guest/tests/%.o: guest/tests/%.S
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<

$(BUILD)/guest/%.elf: $(BUILD)/guest/tests/%.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(GUEST_KIT_OBJS) $<

$(BUILD)/guest/smp.elf: $(BUILD)/guest/tests/smp.o $(BUILD)/guest/tests/smp_trampoline.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^))

# Guests that use devices link the kit's virtio driver and Debian's libfdt.a.
LIBFDT_A = $(or $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libfdt.a /usr/lib/libfdt.a)),\
	$(error libfdt.a not found: run make setup))
# Only libfdt's own headers join the guest's include path, not all of /usr/include.
FDT_HEADERS := $(BUILD)/guest/fdt-include/libfdt.h $(BUILD)/guest/fdt-include/libfdt_env.h $(BUILD)/guest/fdt-include/fdt.h
$(BUILD)/guest/fdt-include/%.h: /usr/include/%.h
	@mkdir -p $(dir $@)
	cp $< $@
$(BUILD)/guest/kit/virtio.o $(BUILD)/guest/tests/blk.o $(BUILD)/guest/tests/net.o $(BUILD)/guest/tests/vsock.o $(BUILD)/guest/tests/count.o $(BUILD)/guest/tests/rng.o $(BUILD)/guest/tests/balloon.o: $(FDT_HEADERS)
$(BUILD)/guest/count.elf: $(BUILD)/guest/tests/count.o $(BUILD)/guest/kit/virtio.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)
$(BUILD)/guest/vsock.elf: $(BUILD)/guest/tests/vsock.o $(BUILD)/guest/kit/virtio.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)
$(BUILD)/guest/net.elf: $(BUILD)/guest/tests/net.o $(BUILD)/guest/kit/virtio.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)
# The ACPI reader's guest, entered through PVH (.elf) and as a bzImage.
GUEST_ACPI_OBJS := $(BUILD)/guest/tests/acpi.o $(BUILD)/guest/kit/acpi.o $(BUILD)/guest/kit/acpi_aml.o
$(BUILD)/guest/acpi.elf: $(GUEST_ACPI_OBJS) $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^))
$(BUILD)/guest/blk.elf: $(BUILD)/guest/tests/blk.o $(BUILD)/guest/kit/virtio.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)
$(BUILD)/guest/rng.elf: $(BUILD)/guest/tests/rng.o $(BUILD)/guest/kit/virtio.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)
$(BUILD)/guest/balloon.elf: $(BUILD)/guest/tests/balloon.o $(BUILD)/guest/kit/virtio.o $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)

# A function image: the author's handler, the function runtime (fn.o, fn_cpu.o,
# fn_trap.o, sha256.o for the seed, acpi*.o for the VMGenID), the virtio
# driver and the kit.
GUEST_FN_OBJS := $(addprefix $(BUILD)/guest/kit/,fn.o fn_cpu.o fn_trap.o sha256.o virtio.o acpi.o acpi_aml.o)
$(BUILD)/guest/examples/%.o: guest/examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS) -c -o $@ $<
$(BUILD)/guest/examples/%.elf: $(BUILD)/guest/examples/%.o $(GUEST_FN_OBJS) $(GUEST_KIT_OBJS) guest/kit/guest.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/guest.ld -o $@ $(sort $(filter %.o,$^)) $(LIBFDT_A)

# bzImage test guest: our own setup header, then a flat 64-bit payload at 1 MiB.
$(BUILD)/guest/bzimage-check.payload.elf: $(BUILD)/guest/tests/bzimage_check.o $(BUILD)/guest/kit/entry64.o $(BUILD)/guest/kit/kit.o $(BUILD)/guest/kit/libc.o guest/kit/bzimage.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/bzimage.ld -o $@ $(filter %.o,$^)
$(BUILD)/guest/%.bzImage: $(BUILD)/guest/%.payload.elf scripts/pack-bzimage.py
	objcopy -O binary $< $@.payload
	scripts/pack-bzimage.py $@.payload \
		$$(( 0x$$(nm $< | awk '$$3 == "_end" {print $$1}') - 0x100000 )) $@

$(BUILD)/guest/acpi.payload.elf: $(BUILD)/guest/kit/entry64.o $(GUEST_ACPI_OBJS) $(BUILD)/guest/kit/kit.o $(BUILD)/guest/kit/libc.o guest/kit/bzimage.ld
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -T guest/kit/bzimage.ld -o $@ $(filter %.o,$^)

# The ring-3 checksum, built for the host so tests know the expected value.
$(BUILD)/guest/ring3-checksum-host: guest/tests/ring3_checksum.c guest/tests/ring3_checksum.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -DHOST_BUILD -Iguest/tests -o $@ $<

# --- tests ----------------------------------------------------------------
$(BUILD)/tests/unit/%: tests/unit/%.c $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(VMM_LIB_OBJS) $(CMOCKA_LIBS) $(LDLIBS)

# The ACPI tables of a given VM shape, written out for acpica-tools.
$(BUILD)/tests/acpi-dump: tests/acpi/acpi_dump.c $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(VMM_LIB_OBJS) $(LDLIBS)

# The bzImage unit test parses Debian's real cloud kernel (fetched, not installed).
unit: $(UNIT_TESTS)
	@set -e; export EMBER_DEBIAN_BZIMAGE=$$(scripts/fetch-debian-kernel.sh); \
	for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

# faultfs: a FUSE file whose reads and writes fail on a byte range, for
# tests/integration/test_faults.py (Debian's libfuse3).
$(BUILD)/tests/faultfs: tests/integration/faultfs.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags fuse3) -o $@ $< $(shell $(PKG_CONFIG) --libs fuse3)

# Integration tests boot real guests, including our Linux build and its
# userspace (both cached under /var/cache/ember).
integration: all $(BUILD)/ember-test-hooks $(BUILD)/tests/faultfs $(BUILD)/tests/acpi-dump
	@set -e; export EMBER_VMLINUX=$$(scripts/build-guest-kernel.sh); scripts/build-guest-rootfs.sh >/dev/null; \
	$(PYTEST) -v -rs --durations=15 tests/integration

# The integration suite once more, with every ember run through ember-jailer
# as uid 65534 (tests/integration/jailed-ember).
test-jailed: all $(BUILD)/ember-test-hooks $(BUILD)/tests/faultfs $(BUILD)/tests/acpi-dump
	@set -e; export EMBER_VMLINUX=$$(scripts/build-guest-kernel.sh); scripts/build-guest-rootfs.sh >/dev/null; \
	EMBER_JAILED=1 $(PYTEST) -v -rs --durations=15 tests/integration

# The integration suite once more against build/asan/ember: ASan, UBSan and
# LeakSanitizer, seccomp on (its filters add the sanitizers' own system calls,
# resources/seccomp/x86_64-sanitizers.policy). Fails on any report.
ASAN_BUILD := build/asan
ASAN_TESTS ?= tests/integration
ASAN_CFLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan-build:
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC=clang EXTRA_CFLAGS="$(ASAN_CFLAGS)" \
		SECCOMP_EXTRA=resources/seccomp/x86_64-sanitizers.policy $(ASAN_BUILD)/ember

test-asan: all asan-build $(BUILD)/ember-test-hooks $(BUILD)/tests/faultfs $(BUILD)/tests/acpi-dump
	@set -e; export EMBER_VMLINUX=$$(scripts/build-guest-kernel.sh); scripts/build-guest-rootfs.sh >/dev/null; \
	rm -rf $(ASAN_BUILD)/reports; \
	rc=0; EMBER_SANITIZED=1 EMBER_SANITIZER_DIR=$(CURDIR)/$(ASAN_BUILD)/reports \
		$(PYTEST) -v -rs --durations=15 $(ASAN_TESTS) || rc=$$?; \
	tests/integration/sanitizer-check $(ASAN_BUILD)/reports || rc=1; exit $$rc

# Soak: boot/teardown cycles and mixed API requests on real guests; fails on
# an fd or memory leak, a leftover socket or process, a hang or a wrong
# answer. CI size by default; SOAK_ARGS=--full for 1,000 cycles and 10,000
# requests. EMBER_BIN=build/asan/ember soaks the sanitizer build.
SOAK_ARGS ?=
soak: all
	scripts/soak.sh $(SOAK_ARGS)

kernel:
	@scripts/build-guest-kernel.sh

# The Linux guest's userspace: initramfs and ext4 root (busybox, ember-vsock, /init).
rootfs:
	@scripts/build-guest-rootfs.sh

# seccomp: the policy compiled to BPF at build time and embedded.
# SECCOMP_EXTRA: files whose rules are added to the policy's (the sanitizer
# build's only; see test-asan).
SECCOMP_POLICY := resources/seccomp/x86_64.policy
SECCOMP_EXTRA ?=
$(BUILD)/tools/seccompiler: vmm/seccomp/seccompiler.c vmm/seccomp/policy.c vmm/seccomp/policy.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ vmm/seccomp/seccompiler.c vmm/seccomp/policy.c -lseccomp
$(BUILD)/gen/seccomp_filters.c: $(SECCOMP_POLICY) $(SECCOMP_EXTRA) $(BUILD)/tools/seccompiler
	@mkdir -p $(dir $@)
	$(BUILD)/tools/seccompiler $(SECCOMP_POLICY) $(SECCOMP_EXTRA) $@
$(BUILD)/gen/seccomp_filters.o: $(BUILD)/gen/seccomp_filters.c
	$(CC) $(CFLAGS) -c -o $@ $<

# validate() bounds the jail's paths, so gcc's truncation guesses do not apply.
$(BUILD)/ember-jailer: jailer/jailer.c jailer/files.c jailer/cgroup.c jailer/jailer.h vmm/version.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(STATIC_LDFLAGS) -Wno-format-truncation -o $@ $(filter %.c,$^)

# A test-only build: ember with EMBER_TEST_HOOKS (a thread can be told to
# break its seccomp filter). Never installed or shipped.
$(BUILD)/test-hooks/seccomp.o: vmm/seccomp/seccomp.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DEMBER_TEST_HOOKS -c -o $@ $<
$(BUILD)/ember-test-hooks: $(filter-out $(BUILD)/vmm/seccomp/seccomp.o,$(VMM_OBJS)) $(BUILD)/test-hooks/seccomp.o
	$(CC) $(CFLAGS) $(STATIC_LDFLAGS) -o $@ $^ $(STATIC_LDLIBS)

# Benchmark harness: the real device code driven from the host.
$(BUILD)/bench/blk-harness: scripts/bench/blk_harness.c $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(VMM_LIB_OBJS) $(LDLIBS)

# Everything CI runs (.ci/run): formatting, unit tests, every fuzz target
# for FUZZ_SMOKE_SECONDS, the integration suite plain, jailed and under the
# sanitizers, and the small soak.
test: setup
	$(MAKE) fmt-check
	$(MAKE) all $(UNIT_TESTS) $(BUILD)/ember-test-hooks
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) integration
	$(MAKE) test-jailed
	$(MAKE) test-asan
	$(MAKE) soak

run: setup
	@$(MAKE) --no-print-directory all
	@echo "== booting build/guest/hello.elf"
	$(BUILD)/ember --kernel $(BUILD)/guest/hello.elf --boot-timer --level info --cmdline "exit=0"

$(BUILD)/bench/net-harness: scripts/bench/net_harness.c $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(VMM_LIB_OBJS) $(LDLIBS)

$(BUILD)/bench/kvm-teardown: scripts/bench/kvm_teardown.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/bench/cycles-driver: scripts/bench/cycles_driver.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

$(BUILD)/bench/vsock-harness: scripts/bench/vsock_harness.c $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(VMM_LIB_OBJS) $(LDLIBS)

bench: setup
	@$(MAKE) --no-print-directory all $(BUILD)/bench/blk-harness $(BUILD)/bench/net-harness $(BUILD)/bench/vsock-harness $(BUILD)/bench/kvm-teardown $(BUILD)/bench/cycles-driver
	scripts/bench/boot.sh
	scripts/bench/startup.sh
	scripts/bench/block.sh
	scripts/bench/api.sh
	scripts/bench/net.sh
	scripts/bench/vsock.sh
	scripts/bench/restore.sh
	scripts/bench/fn.sh
	scripts/bench/jail.sh
	scripts/bench/linux.sh

# --- fuzzing --------------------------------------------------------------
# libFuzzer targets (tests/fuzz/fuzz_*.c) link ember's own objects, built
# again with clang under build/fuzz with ASan and UBSan. Seed corpora and
# regression inputs: tests/fuzz/corpus/<target>/. `make fuzz` runs each
# target for FUZZ_SECONDS; `make fuzz-smoke` (part of `make test`) for
# FUZZ_SMOKE_SECONDS. Any crash, leak, timeout or sanitizer report fails.
FUZZ_BUILD := build/fuzz
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 15
FUZZ_CFLAGS := -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

$(BUILD)/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/unit -Itests/fuzz -o $@ $< $(VMM_LIB_OBJS) $(LDLIBS)

# The jailer's argument parser: jailer.c's main() renamed out of the way.
# (clang, which builds the fuzz targets, has no -Wformat-truncation to turn off.)
$(BUILD)/tests/fuzz/fuzz_jailer: tests/fuzz/fuzz_jailer.c tests/fuzz/fuzz.h jailer/jailer.c jailer/files.c jailer/cgroup.c jailer/jailer.h vmm/version.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Ijailer -Itests/fuzz -Dmain=jailer_main -o $@ $< jailer/jailer.c jailer/files.c jailer/cgroup.c

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang EXTRA_CFLAGS="$(FUZZ_CFLAGS)" \
		$(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/fuzz/%)

fuzz: setup
	@$(MAKE) --no-print-directory fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-smoke: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD)/tests/fuzz $(FUZZ_SMOKE_SECONDS) $(FUZZ_NAMES)

# --- formatting -----------------------------------------------------------
FMT_SRCS = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)
fmt:
	clang-format -i $(FMT_SRCS)
fmt-check:
	@out=$$(clang-format --dry-run $(FMT_SRCS) 2>&1); \
	if [ -n "$$out" ]; then echo "$$out" | head -40; echo "format check failed: run 'make fmt'"; exit 1; fi; \
	echo "format check: ok"

clean:
	rm -rf $(BUILD)

.SECONDARY:
-include $(patsubst %.o,%.d,$(filter %.o,$(VMM_OBJS)))
-include $(wildcard $(BUILD)/guest/kit/*.d $(BUILD)/guest/tests/*.d $(BUILD)/guest/examples/*.d $(BUILD)/tests/fuzz/*.d)
-include $(wildcard $(BUILD)/api/fn/*.d $(BUILD)/tests/unit/*.d $(BUILD)/test-hooks/*.d)
